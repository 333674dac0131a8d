#!/usr/bin/env python3
"""The CDK CLI's entry point (cdk.json): the app itself is cdk_app.application."""

from cdk_app.application import main

if __name__ == "__main__":
    main()
