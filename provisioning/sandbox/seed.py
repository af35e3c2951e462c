"""Seed the sandbox's moto server with a host staging environment like a real team's.

Everything is made through the AWS API (boto3), as an operator's Terraform would, except what
the API cannot express: the ages of snapshots and images, and a snapshot still being taken. Those
are set on moto's in-process backend objects, which is why the seed must run in the moto server's
process, with ``delays.paused()`` active so the host is usable at once. The unit tests seed the
same host into moto's in-process ``mock_aws`` (no endpoint), so the two never drift apart.
"""

import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta

import boto3

CLUSTER = "host-staging"
WEB_SERVICE = "host-web"
WORKER_SERVICE = "host-worker"
HOST_DB = "host-db"
OTHER_DBS = ("staging-marketing-db", "staging-support-db")
PASSWORD_SECRET = "host-staging/db-master-password"
MASTER_USERNAME = "app"
PARAMETER_GROUP = "host-staging-pg16"
PARAMETER_GROUP_FAMILY = "postgres16"
PARAMETERS = {"rds.force_ssl": "1", "shared_preload_libraries": "pg_stat_statements"}
REPOSITORY = "app"
APP_PORT = 3000
WEB_FAMILY = f"{CLUSTER}-web"
WORKER_FAMILY = f"{CLUSTER}-worker"
LOG_ROUTER = "log-router"
LOG_ROUTER_IMAGE = "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable"
DOMAIN = "stagings.localhost"
AZ_SUFFIXES = ("a", "b")

# Image tags as CI pushes them (a branch's characters outside [A-Za-z0-9_.-] become "-"), with
# how long ago each was pushed.
IMAGE_AGES_HOURS = {
    "main": 2,
    "develop": 0.5,
    "feature-Login_Page": 3,
    "feature-search": 26,
    "release-2026.11": 120,
    "feature-broken": 1,  # its container exits at start (see ecs_health.CRASHING_TAGS)
}
# (instance, hours ago, taken by): the team's hourly backup job, RDS's own daily automated
# backup, or someone by hand. The one in progress must never be restored from.
SNAPSHOTS = (
    (HOST_DB, 1, "hourly"),
    (HOST_DB, 2, "hourly"),
    (HOST_DB, 3, "hourly"),
    (HOST_DB, 25, "automated"),
    (HOST_DB, 240, "before-upgrade"),
    ("staging-marketing-db", 5, "hourly"),
    ("staging-support-db", 24, "automated"),
)
IN_PROGRESS_SNAPSHOT = ("staging-marketing-db", 0.2, "hourly")


class Seeder:
    """Builds the host environment; each method makes one layer and records what it made."""

    def __init__(self, endpoint_url: str | None, region: str):
        """``endpoint_url`` None: moto's in-process ``mock_aws`` (the unit tests)."""
        self._session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
        )
        self._endpoint_url = endpoint_url
        self._clients: dict[str, object] = {}
        self.region = region
        self.account = self.client("sts").get_caller_identity()["Account"]
        self.made: dict[str, object] = {}

    def client(self, service: str):
        # Making a client costs more than most calls the seed makes with it.
        if service not in self._clients:
            self._clients[service] = self._session.client(service,
                                                          endpoint_url=self._endpoint_url)
        return self._clients[service]

    def network(self) -> None:
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", TagSpecifications=_name_tag("vpc", CLUSTER))
        vpc_id = vpc["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(
                VpcId=vpc_id,
                CidrBlock=f"10.0.{index + 1}.0/24",
                AvailabilityZone=f"{self.region}{suffix}",
                TagSpecifications=_name_tag("subnet", f"{CLUSTER}-private-{suffix}"),
            )["Subnet"]["SubnetId"]
            for index, suffix in enumerate(AZ_SUFFIXES)
        ]
        app_sg = ec2.create_security_group(
            GroupName=f"{CLUSTER}-app", Description="ALB and app tasks", VpcId=vpc_id
        )["GroupId"]
        db_sg = ec2.create_security_group(
            GroupName=f"{CLUSTER}-db", Description="Postgres from the app", VpcId=vpc_id
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=db_sg,
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                            "UserIdGroupPairs": [{"GroupId": app_sg}]}],
        )
        self.made.update(vpc=vpc_id, subnets=subnets, app_sg=app_sg, db_sg=db_sg)

    def load_balancers(self) -> None:
        elbv2 = self.client("elbv2")
        dynamic_alb = self._alb("dynamic-stagings")
        listener = elbv2.create_listener(
            LoadBalancerArn=dynamic_alb, Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {
                "StatusCode": "404", "ContentType": "text/plain",
                "MessageBody": "No dynamic staging answers to this host name.",
            }}],
        )["Listeners"][0]["ListenerArn"]
        # As real hosts have it: the app's health endpoint, not "/" (which redirects to login).
        host_group = elbv2.create_target_group(
            Name=WEB_SERVICE, Protocol="HTTP", Port=APP_PORT, VpcId=self.made["vpc"],
            TargetType="ip", HealthCheckProtocol="HTTP", HealthCheckPort="traffic-port",
            HealthCheckPath="/healthz", Matcher={"HttpCode": "200"},
            HealthCheckIntervalSeconds=15, HealthCheckTimeoutSeconds=5,
            HealthyThresholdCount=2, UnhealthyThresholdCount=3,
        )["TargetGroups"][0]["TargetGroupArn"]
        elbv2.create_listener(
            LoadBalancerArn=self._alb(CLUSTER), Protocol="HTTP", Port=80,
            DefaultActions=[{"Type": "forward", "TargetGroupArn": host_group}],
        )
        self.made.update(dynamic_alb=dynamic_alb, listener=listener, host_target_group=host_group)

    def _alb(self, name: str) -> str:
        return self.client("elbv2").create_load_balancer(
            Name=name, Subnets=self.made["subnets"], SecurityGroups=[self.made["app_sg"]],
            Scheme="internet-facing", Type="application", IpAddressType="ipv4",
            Tags=[{"Key": "environment", "Value": CLUSTER}],
        )["LoadBalancers"][0]["LoadBalancerArn"]

    def images(self) -> None:
        ecr = self.client("ecr")
        uri = ecr.create_repository(repositoryName=REPOSITORY)["repository"]["repositoryUri"]
        for tag in IMAGE_AGES_HOURS:
            ecr.put_image(repositoryName=REPOSITORY, imageTag=tag, imageManifest=manifest(tag))
        _backdate_images(self.account, self.region)
        self.made["image"] = f"{uri}:main"

    def databases(self) -> None:
        rds = self.client("rds")
        rds.create_db_subnet_group(
            DBSubnetGroupName=CLUSTER, DBSubnetGroupDescription="host staging databases",
            SubnetIds=self.made["subnets"],
        )
        self._parameter_group()
        passwords = {db: secrets.token_urlsafe(18) for db in (HOST_DB, *OTHER_DBS)}
        for db, password in passwords.items():
            self._database(db, password, storage_gb=50 if db == HOST_DB else 20)
        # As RDS keeps a master password it manages: JSON, the password under "password".
        self.made["password_secret"] = self.client("secretsmanager").create_secret(
            Name=PASSWORD_SECRET,
            SecretString=json.dumps({"username": MASTER_USERNAME, "password": passwords[HOST_DB]}),
            Description="Master password of the host staging database",
        )["ARN"]
        self.made["host_db_address"] = rds.describe_db_instances(DBInstanceIdentifier=HOST_DB)[
            "DBInstances"][0]["Endpoint"]["Address"]
        self.made["host_db_password"] = passwords[HOST_DB]
        self._snapshots()

    def _parameter_group(self) -> None:
        """The app needs these settings: a database on the engine's default group lacks them."""
        rds = self.client("rds")
        rds.create_db_parameter_group(
            DBParameterGroupName=PARAMETER_GROUP, DBParameterGroupFamily=PARAMETER_GROUP_FAMILY,
            Description="host staging databases: SSL only, pg_stat_statements",
        )
        rds.modify_db_parameter_group(DBParameterGroupName=PARAMETER_GROUP, Parameters=[
            {"ParameterName": name, "ParameterValue": value, "ApplyMethod": "pending-reboot"}
            for name, value in PARAMETERS.items()
        ])

    def _database(self, identifier: str, password: str, storage_gb: int) -> None:
        self.client("rds").create_db_instance(
            DBInstanceIdentifier=identifier, DBInstanceClass="db.t3.medium", Engine="postgres",
            EngineVersion="16.3", DBName="app", MasterUsername=MASTER_USERNAME,
            MasterUserPassword=password, AllocatedStorage=storage_gb, StorageType="gp3",
            DBSubnetGroupName=CLUSTER, VpcSecurityGroupIds=[self.made["db_sg"]],
            DBParameterGroupName=PARAMETER_GROUP,
            BackupRetentionPeriod=7, PubliclyAccessible=False,
            # Nobody deletes the shared staging database by accident; its restores must not
            # inherit that.
            DeletionProtection=identifier == HOST_DB,
            Tags=[{"Key": "environment", "Value": identifier.removesuffix("-db")}],
        )

    def _snapshots(self) -> None:
        ages: dict[str, float] = {}
        taken_of: dict[str, str] = {}
        automated: list[tuple[str, str]] = []
        for instance, hours, taken_by in (*SNAPSHOTS, IN_PROGRESS_SNAPSHOT):
            if taken_by == "automated":
                # Only RDS itself may take these ("rds:" names): made in-process below.
                identifier = f"rds:{instance}-{_stamp(hours, '%Y-%m-%d-%H-%M')}"
                automated.append((identifier, instance))
            else:
                identifier = f"{instance}-{taken_by}-{_stamp(hours)}"
                self.client("rds").create_db_snapshot(
                    DBSnapshotIdentifier=identifier, DBInstanceIdentifier=instance
                )
            ages[identifier] = hours
            taken_of[identifier] = instance
        in_progress = list(ages)[-1]
        _set_database_ages(self.account, self.region, ages, automated, in_progress)
        # What a restore of each source takes: its newest snapshot that is not still being taken.
        newest: dict[str, str] = {}
        for identifier in sorted(ages, key=ages.__getitem__, reverse=True):
            if identifier != in_progress:
                newest[taken_of[identifier]] = identifier
        self.made["newest_snapshots"] = newest

    def services(self) -> None:
        ecs = self.client("ecs")
        ecs.create_cluster(clusterName=CLUSTER)
        web = ecs.register_task_definition(**self._task_definition("web"))
        worker = ecs.register_task_definition(**self._task_definition("worker"))
        network = {"awsvpcConfiguration": {
            "subnets": self.made["subnets"], "securityGroups": [self.made["app_sg"]],
            "assignPublicIp": "DISABLED",
        }}
        common = {"cluster": CLUSTER, "desiredCount": 1, "launchType": "FARGATE",
                  "networkConfiguration": network,
                  "tags": [{"key": "environment", "value": CLUSTER}]}
        self.made.update(web_task_definition=web["taskDefinition"]["taskDefinitionArn"],
                         worker_task_definition=worker["taskDefinition"]["taskDefinitionArn"])
        ecs.create_service(
            serviceName=WEB_SERVICE, taskDefinition=web["taskDefinition"]["taskDefinitionArn"],
            loadBalancers=[{"targetGroupArn": self.made["host_target_group"],
                            "containerName": "web", "containerPort": APP_PORT}],
            healthCheckGracePeriodSeconds=60, **common,
        )
        ecs.create_service(
            serviceName=WORKER_SERVICE,
            taskDefinition=worker["taskDefinition"]["taskDefinitionArn"], **common,
        )

    def _task_definition(self, role: str) -> dict:
        """Sized as real hosts are: the app container with its own cpu/memory (and a soft
        reservation), and a FireLens log router beside it, all inside a 1 vCPU / 2 GiB task."""
        app = {
            "name": role, "image": self.made["image"], "essential": True,
            "cpu": 768, "memory": 1536, "memoryReservation": 1024,
            "environment": self._app_environment(),
            "logConfiguration": {"logDriver": "awsfirelens", "options": {
                "Name": "cloudwatch_logs", "region": self.region,
                "log_group_name": f"/ecs/{CLUSTER}", "log_stream_prefix": f"{role}/",
                "auto_create_group": "false",
            }},
            "dependsOn": [{"containerName": LOG_ROUTER, "condition": "START"}],
        }
        if role == "web":
            app["portMappings"] = [{"containerPort": APP_PORT, "protocol": "tcp"}]
        else:
            app["command"] = ["bundle", "exec", "resque"]
        roles = f"arn:aws:iam::{self.account}:role/{CLUSTER}"
        return {
            "family": WEB_FAMILY if role == "web" else WORKER_FAMILY, "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"], "cpu": "1024", "memory": "2048",
            "executionRoleArn": f"{roles}-task-execution", "taskRoleArn": f"{roles}-app",
            "containerDefinitions": [app, self._log_router(role)],
        }

    def _log_router(self, role: str) -> dict:
        return {
            "name": LOG_ROUTER, "image": LOG_ROUTER_IMAGE, "essential": False,
            "cpu": 64, "memory": 128,
            "firelensConfiguration": {"type": "fluentbit", "options": {
                "enable-ecs-log-metadata": "true"}},
            # The router's own logs cannot go through itself.
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": f"/ecs/{CLUSTER}/firelens", "awslogs-region": self.region,
                "awslogs-stream-prefix": role,
            }},
        }

    def _app_environment(self) -> list[dict[str, str]]:
        database_url = (f"postgres://app:{self.made['host_db_password']}@"
                        f"{self.made['host_db_address']}:5432/app")
        redis_url = f"redis://{CLUSTER}-redis.x1y2z3.ng.0001.use1.cache.amazonaws.com:6379/0"
        values = {"RAILS_ENV": "staging", "PORT": str(APP_PORT), "DATABASE_URL": database_url,
                  "REDIS_URL": redis_url, "QUEUE": "*"}
        return [{"name": name, "value": value} for name, value in values.items()]

    def environment(self) -> dict[str, str]:
        return {
            "DS_CLUSTER": CLUSTER,
            "DS_WEB_SERVICE": WEB_SERVICE,
            "DS_WORKER_SERVICE": WORKER_SERVICE,
            "DS_LISTENER_ARN": str(self.made["listener"]),
            "DS_DOMAIN": DOMAIN,
            "DS_URL_SCHEME": "http",
            "DS_HOST_DB_INSTANCE": HOST_DB,
            "DS_SNAPSHOT_SOURCES": ",".join((HOST_DB, *OTHER_DBS)),
            "DS_HOST_DB_PASSWORD_SECRET": PASSWORD_SECRET,
        }


def seeded(endpoint_url: str | None, region: str) -> Seeder:
    """Build the host environment; the seeder knows what it made (``made``)."""
    seeder = Seeder(endpoint_url, region)
    seeder.network()
    seeder.load_balancers()
    seeder.images()
    seeder.databases()
    seeder.services()
    return seeder


def seed_host_environment(endpoint_url: str, region: str) -> dict[str, str]:
    """Build the host environment on the moto server; return the DS_* variables that find it."""
    return seeded(endpoint_url, region).environment()


def _name_tag(resource: str, name: str) -> list[dict]:
    return [{"ResourceType": resource, "Tags": [{"Key": "Name", "Value": name}]}]


def manifest(tag: str, layer: str = "") -> str:
    """A Docker v2 manifest whose layer digest (hence image digest) is unique to the tag, or to
    ``layer`` when given (another build pushed under the same tag)."""

    def digest(text: str) -> str:
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    return json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": 7023, "digest": digest(f"config-{tag}")},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 31_457_280, "digest": digest(f"layer-{layer or tag}")}],
    })


def _stamp(hours_ago: float, pattern: str = "%Y-%m-%d-%H%M") -> str:
    return (datetime.now(UTC) - timedelta(hours=hours_ago)).strftime(pattern)


# --- what the API cannot do: set on moto's backend objects in this process ---------------------


def _backdate_images(account: str, region: str) -> None:
    from moto.ecr.models import ecr_backends

    for image in ecr_backends[account][region].repositories[REPOSITORY].images:
        hours = max(IMAGE_AGES_HOURS.get(tag, 0) for tag in image.image_tags or [""])
        image.image_pushed_at -= int(hours * 3600)


def _set_database_ages(
    account: str,
    region: str,
    ages: dict[str, float],
    automated: list[tuple[str, str]],
    in_progress: str,
) -> None:
    """Instances made long ago, snapshots taken hours or days ago, one still being taken."""
    from moto.rds.models import rds_backends

    backend = rds_backends[account][region]
    for instance in backend.databases.values():
        instance.created -= timedelta(days=400)
        instance.instance_create_time = instance.created
    for identifier, snapshot in list(backend.database_snapshots.items()):
        if snapshot.snapshot_type == "automated":  # moto's own, taken at creation: "now"
            del backend.database_snapshots[identifier]
    for identifier, instance in automated:
        backend.create_auto_snapshot(instance, identifier)
    for identifier, hours in ages.items():
        snapshot = backend.database_snapshots[identifier]
        shift = timedelta(hours=hours)
        snapshot.created -= shift
        snapshot.original_snapshot_create_time -= shift
        snapshot.instance_create_time = backend.databases[snapshot.db_instance_identifier].created
    backend.database_snapshots[in_progress].status = "creating"
