"""Who may call the API: a Cognito user pool, created here or imported by ID."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cognito as cognito
from constructs import Construct

from .nag import acknowledge

_PLUS_PLAN_REASON = (
    "Threat protection (advanced security) needs the Cognito Plus feature plan, billed per monthly active user. "
    "Production deployments usually import the bank's own pool (liveness:cognitoUserPoolId), which carries its own "
    "protection settings."
)


class CallerIdentity(Construct):
    """Creates a user pool with an app client for the web frontend, or imports the bank's existing pool."""

    def __init__(self, scope: Construct, construct_id: str, *, existing_user_pool_id: str = "") -> None:
        super().__init__(scope, construct_id)
        self.client: cognito.UserPoolClient | None = None
        if existing_user_pool_id:
            self.user_pool: cognito.IUserPool = cognito.UserPool.from_user_pool_id(
                self, "UserPool", existing_user_pool_id
            )
            return
        pool = cognito.UserPool(
            self,
            "UserPool",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=12, require_digits=True, require_lowercase=True, require_uppercase=True, require_symbols=True
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        for rule_id in ("AwsSolutions-COG3", "AwsSolutions-COG8"):
            acknowledge(pool, rule_id, _PLUS_PLAN_REASON)
        self.user_pool = pool
        self.client = pool.add_client(
            "WebClient",
            auth_flows=cognito.AuthFlow(user_srp=True),
            generate_secret=False,  # a browser app cannot keep a secret
            prevent_user_existence_errors=True,
            # This client signs in by SRP from your own frontend; left on, CDK's OAuth defaults would enable the
            # implicit grant with every scope and an example.com callback. The hosted page has its own
            # code-grant client with PKCE (web_hosting.py).
            disable_o_auth=True,
        )
