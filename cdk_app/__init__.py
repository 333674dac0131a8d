"""The CDK app for the KYC liveness backend: one stack wiring small constructs."""
