"""An optional SageMaker managed MLflow tracking server for a stage (``mlflow.tracking_server``).

Its artifact store is the ``mlflow/`` prefix of the stage's KMS-encrypted artifacts bucket; its
role may read and write that prefix only, with that key only. The server's ARN is the tracking
URI (``mlops experiments ... --stage S`` builds the same ARN from cdk.json; the stack outputs it).
A tracking server bills by the hour from creation to deletion, idle or not: it is off by default.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from mlops.stages import MlflowSettings

ARTIFACT_PREFIX = "mlflow"


class MlflowTrackingServer(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: str,
        settings: MlflowSettings,
        bucket: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = bucket
        self.role = iam.Role(
            self,
            "Role",
            role_name=f"mlops-{stage}-sagemaker-mlflow",
            description="The MLflow tracking server: its artifact prefix in the artifacts bucket",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
        )
        # Explicit statements rather than grant helpers: no wildcard actions, one prefix.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ArtifactObjects",
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[bucket.arn_for_objects(f"{ARTIFACT_PREFIX}/*")],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ArtifactListing",
                actions=["s3:ListBucket"],
                resources=[bucket.bucket_arn],
                conditions={"StringLike": {"s3:prefix": [f"{ARTIFACT_PREFIX}/*", ARTIFACT_PREFIX]}},
            )
        )
        # Its own statement: a GetBucketLocation request has no s3:prefix, so the condition
        # above would never allow it.
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="BucketLocation",
                actions=["s3:GetBucketLocation"],
                resources=[bucket.bucket_arn],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="ArtifactEncryption",
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[key.key_arn],
            )
        )
        self.server = sagemaker.CfnMlflowTrackingServer(
            self,
            "Server",
            tracking_server_name=settings.server_name(stage),
            artifact_store_uri=f"s3://{bucket.bucket_name}/{ARTIFACT_PREFIX}",
            role_arn=self.role.role_arn,
            tracking_server_size=settings.size,
            mlflow_version=settings.mlflow_version,
            automatic_model_registration=False,  # the pipeline registers models itself
        )
        # SageMaker checks the role's access to the artifact store when it creates the server.
        self.server.node.add_dependency(self.role)
        cdk.CfnOutput(
            self,
            "TrackingUri",
            value=self.server.attr_tracking_server_arn,
            description="MLflow tracking URI: mlops ... --tracking-uri <this>, or --stage",
        )
