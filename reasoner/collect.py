"""Live collection: read an AWS estate through read-only APIs and write a snapshot folder.

The folder has the layout of the snapshot format (version 1)::

    DIR/
      organization.json                  when the caller can read the organization
      accounts/<id>/authorization-details.json
      accounts/<id>/resources.json
      collection-log.json                what was asked, what could not be read

Only ``Get*``, ``List*`` and ``Describe*`` calls are made, plus ``sts:GetCallerIdentity`` and, for
organization-wide collection, ``sts:AssumeRole`` into ``arn:<partition>:iam::<id>:role/<role_name>``
of every active member account.

Missing data.  A call that fails (access denied, a service not offered in a region, throttling that
outlasts the retries, an unreachable endpoint) does not stop the collection: it becomes a *gap*.
Every gap is listed in ``collection-log.json`` under ``"Missing"``, and the gaps that concern one
file are also listed under a ``"Missing"`` key inside that file (``resources.json`` of the account,
or ``organization.json``).  ``"Missing"`` is an extension of the snapshot format that a loader may
ignore; each entry reads::

    {"Account": "111111111111", "Service": "kms", "Region": "us-east-1", "Operation": "ListKeys",
     "Resource": "", "Error": "AccessDeniedException", "Kind": "access-denied", "Message": "..."}

``Kind`` is ``access-denied``, ``unsupported`` (service or API not offered there),
``unreachable`` (no connection), ``throttled`` or ``error``.  An account whose authorization
details cannot be read gets no folder at all (that file is required), and is marked ``failed`` in
the log.  ``organization.json`` is written only when the organization tree (roots, OUs, accounts)
was read completely; a policy that could not be read is then listed under its ``"Missing"``.

Workloads are Lambda functions, EC2 instances with an instance profile, CloudFormation stacks with
a service role, Glue dev endpoints and jobs, SageMaker notebook instances, CodeBuild projects and
active ECS task definitions (``Role`` is the task role; the extension ``ExecutionRole`` names the
role the ECS agent uses).

``collection-log.json``::

    {"Version": 1, "Started": "...", "Finished": "...",
     "Caller": {"Account": "...", "Arn": "..."}, "Regions": ["us-east-1"], "RoleName": null,
     "Accounts": [{"Id": "...", "Access": "caller" | "assumed", "Status": "collected" | "failed"}],
     "Organization": "collected" | "not-in-use" | "failed", "Missing": [...]}
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
)

__all__ = ["CollectError", "CollectionResult", "Collector", "Gap", "Step", "collect"]

DEFAULT_REGION = "us-east-1"
SESSION_NAME = "iam-reasoner-collect"

# Throttling and transient errors are retried by botocore; adaptive mode also slows the client
# down when AWS says so.
_CONFIG = dict(retries={"max_attempts": 10, "mode": "adaptive"}, connect_timeout=10, read_timeout=60)
# The first call decides whether anything can be collected at all: fail fast.
_PROBE_CONFIG = dict(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=20)

_ACCESS_DENIED = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError",
    "AuthorizationErrorException", "UnauthorizedAccess", "Forbidden", "403",
}
_UNSUPPORTED = {
    "OptInRequired", "SubscriptionRequiredException", "UnrecognizedClientException", "InvalidAction",
    "UnsupportedOperation", "UnsupportedOperationException", "UnsupportedAPIEndpointException",
    "InvalidClientTokenId", "NotImplemented", "404", "501",
}
_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded", "SlowDown"}


class CollectError(Exception):
    """Nothing can be collected (no credentials, endpoint unreachable, output folder in use)."""

    def __init__(self, message: str, hint: str = ""):
        self.message = message
        self.hint = hint
        super().__init__(message)

    def __str__(self) -> str:
        return f"{self.message}; hint: {self.hint}" if self.hint else self.message


@dataclass(frozen=True)
class Gap:
    """One piece of data that could not be collected."""

    account: str
    service: str
    operation: str
    region: str = ""
    resource: str = ""
    error: str = ""
    kind: str = "error"
    message: str = ""

    def as_json(self) -> dict:
        return {
            "Account": self.account, "Service": self.service, "Region": self.region,
            "Operation": self.operation, "Resource": self.resource, "Error": self.error,
            "Kind": self.kind, "Message": self.message,
        }

    def __str__(self) -> str:
        where = " ".join(x for x in (self.account, self.region) if x)
        what = f"{self.service}:{self.operation}" + (f" on `{self.resource}`" if self.resource else "")
        return f"{what} in {where}: {self.error or self.kind}"


@dataclass
class Step:
    """One unit of work, shown in the progress bar by its label."""

    label: str
    run: Callable[[], None]


@dataclass
class CollectionResult:
    out: Path
    accounts: list[str]  # account ids written
    failed_accounts: list[str]
    organization: str  # collected | not-in-use | failed | skipped
    gaps: list[Gap]


class _Absent(Exception):
    """The resource has no such policy / profile: a normal answer, not a gap."""


def _error_code(e: ClientError) -> tuple[str, str]:
    err = e.response.get("Error", {}) or {}
    code = str(err.get("Code") or "")
    message = str(err.get("Message") or "")
    # Some emulators answer JSON-protocol calls with an XML error body; read the code from it.
    if message.lstrip().startswith("<"):
        m = re.search(r"<Code>([^<]*)</Code>", message)
        if m:
            code = m.group(1)
        m = re.search(r"<Message>([^<]*)</Message>", message)
        message = m.group(1) if m else ""
    status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if not code and status:
        code = str(status)
    return code, message


def _kind(code: str, status: int | None = None) -> str:
    if code in _ACCESS_DENIED or status == 403:
        return "access-denied"
    if code in _THROTTLED:
        return "throttled"
    if code in _UNSUPPORTED or status in (404, 501):
        return "unsupported"
    return "error"


def _decode(text: Any) -> Any:
    """A policy document as a JSON value when it parses, else the text as given."""
    if isinstance(text, str):
        try:
            value = json.loads(text)
        except ValueError:
            return text
        return value if isinstance(value, dict) else text
    return text


def _json_default(o: Any) -> Any:
    if isinstance(o, (_dt.datetime, _dt.date)):
        return o.isoformat()
    if isinstance(o, bytes):
        return o.decode("utf-8", "replace")
    raise TypeError(f"cannot write {type(o).__name__} as JSON")


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _items(client, operation: str, key: str, **kwargs) -> list:
    """Every item of a listing, through all its pages."""
    if client.can_paginate(operation):
        out: list = []
        for page in client.get_paginator(operation).paginate(**kwargs):
            out.extend(page.get(key) or [])
        return out
    return list(getattr(client, operation)(**kwargs).get(key) or [])


def _op_name(operation: str) -> str:
    return "".join(part.capitalize() for part in operation.split("_"))


class _Account:
    """What is being collected for one account."""

    def __init__(self, collector: "Collector", account_id: str, access: str):
        self.c = collector
        self.id = account_id
        self.access = access  # caller | assumed
        self.session: boto3.Session | None = collector.session if access == "caller" else None
        self.failed = False
        self.authz: dict | None = None
        self.resource_policies: list[dict] = []
        self.workloads: list[dict] = []
        self.credentials: list[dict] = []
        self.gaps: list[Gap] = []
        self._clients: dict[tuple[str, str], Any] = {}

    # -- plumbing ---------------------------------------------------------------------------------

    def client(self, service: str, region: str | None = None):
        region = region or self.c.regions[0]
        key = (service, region)
        if key not in self._clients:
            self._clients[key] = self.c.make_client(self.session, service, region)
        return self._clients[key]

    def gap(self, service: str, operation: str, region: str = "", resource: str = "", error: str = "",
            kind: str = "error", message: str = "") -> None:
        g = Gap(self.id, service, operation, region, resource, error, kind, message)
        self.gaps.append(g)
        self.c.gaps.append(g)

    def call(self, service: str, operation: str, fn: Callable[[], Any], *, region: str = "",
             resource: str = "", absent: Iterable[str] = ()) -> Any:
        """Run one read; on failure record a gap and return None.  Codes in ``absent`` mean
        'there is none' and raise _Absent."""
        return self.c.guard(self.gap, service, operation, fn, region=region, resource=resource, absent=absent)

    def arn(self, service: str, region: str, rest: str) -> str:
        return f"arn:{self.c.partition}:{service}:{region}:{self.id}:{rest}"

    # -- steps ------------------------------------------------------------------------------------

    def steps(self) -> list[Step]:
        def step(service: str, what: str, fn: Callable[[], None], region: str = "") -> Step:
            def run() -> None:
                if self.failed:  # the role could not be assumed, or IAM could not be read
                    return
                try:
                    fn()
                except Exception as e:  # an answer of a shape we did not expect: keep going, say so
                    self.gap(service, "Collect", region, error=type(e).__name__, kind="error", message=str(e))
            return Step(" ".join(x for x in (self.id, service, what, region) if x), run)

        out = []
        if self.access == "assumed":
            out.append(step("sts", "assume role", self.assume))
        out.append(step("iam", "authorization details", self.authorization_details))
        out.append(step("iam", "credentials", self.user_credentials))
        out.append(step("s3", "", self.s3))
        for region in self.c.regions:
            for name, fn in self.REGIONAL:
                out.append(step(name, "", (lambda f, r: lambda: f(self, r))(fn, region), region))
        return out

    def assume(self) -> None:
        role = f"arn:{self.c.partition}:iam::{self.id}:role/{self.c.role_name}"
        sts = self.c.make_client(self.c.session, "sts", self.c.regions[0])
        resp = self.call("sts", "AssumeRole", lambda: sts.assume_role(RoleArn=role, RoleSessionName=SESSION_NAME),
                         resource=role)
        if resp is None:
            self.failed = True
            return
        cred = resp["Credentials"]
        self.session = boto3.Session(
            aws_access_key_id=cred["AccessKeyId"], aws_secret_access_key=cred["SecretAccessKey"],
            aws_session_token=cred["SessionToken"], region_name=self.c.regions[0],
        )

    def authorization_details(self) -> None:
        iam = self.client("iam")

        def read() -> dict:
            merged: dict[str, list] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
            for page in iam.get_paginator("get_account_authorization_details").paginate():
                for key in merged:
                    merged[key].extend(page.get(key) or [])
            for policy in merged["Policies"]:  # some emulators leave out the name; the ARN ends with it
                if "PolicyName" not in policy and isinstance(policy.get("Arn"), str):
                    policy["PolicyName"] = policy["Arn"].rsplit("/", 1)[-1]
            return merged

        self.authz = self.call("iam", "GetAccountAuthorizationDetails", read)
        if self.authz is None:
            self.failed = True

    def user_credentials(self) -> None:
        iam = self.client("iam")
        for user in (self.authz or {}).get("UserDetailList", []):
            name, arn = user.get("UserName"), user.get("Arn")
            entry: dict[str, Any] = {"User": arn}
            keys = self.call("iam", "ListAccessKeys",
                             lambda: _items(iam, "list_access_keys", "AccessKeyMetadata", UserName=name), resource=arn)
            if keys is not None:
                entry["AccessKeys"] = len(keys)
            try:
                profile = self.call("iam", "GetLoginProfile", lambda: iam.get_login_profile(UserName=name),
                                    resource=arn, absent=("NoSuchEntity", "NoSuchEntityException"))
                if profile is not None:
                    entry["LoginProfile"] = True
            except _Absent:
                entry["LoginProfile"] = False
            mfa = self.call("iam", "ListMFADevices",
                            lambda: _items(iam, "list_mfa_devices", "MFADevices", UserName=name), resource=arn)
            if mfa is not None:
                entry["MFADevices"] = len(mfa)
            self.credentials.append(entry)

    def policy(self, arn: str, document: Any) -> None:
        if document:
            self.resource_policies.append({"Arn": arn, "Policy": _decode(document)})

    def s3(self) -> None:
        s3 = self.client("s3")
        buckets = self.call("s3", "ListBuckets", lambda: _items(s3, "list_buckets", "Buckets"))
        for b in buckets or []:
            name = b["Name"]
            arn = f"arn:{self.c.partition}:s3:::{name}"
            region = self.bucket_region(s3, name, b)
            client = self.client("s3", region)
            try:
                resp = self.call("s3", "GetBucketPolicy", lambda: client.get_bucket_policy(Bucket=name),
                                 region=region, resource=arn, absent=("NoSuchBucketPolicy", "NoSuchBucket"))
            except _Absent:
                continue
            if resp is not None:
                self.policy(arn, resp.get("Policy"))

    def bucket_region(self, s3, name: str, listed: dict) -> str:
        if listed.get("BucketRegion"):
            return listed["BucketRegion"]
        try:
            loc = s3.get_bucket_location(Bucket=name).get("LocationConstraint")
        except (ClientError, BotoCoreError):
            return self.c.regions[0]  # botocore follows the redirect when the guess is wrong
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(loc, loc)

    def kms(self, region: str) -> None:
        kms = self.client("kms", region)
        keys = self.call("kms", "ListKeys", lambda: _items(kms, "list_keys", "Keys"), region=region)
        for k in keys or []:
            arn = k.get("KeyArn") or self.arn("kms", region, f"key/{k['KeyId']}")
            try:
                resp = self.call("kms", "GetKeyPolicy", lambda: kms.get_key_policy(KeyId=k["KeyId"], PolicyName="default"),
                                 region=region, resource=arn, absent=("NotFoundException",))
            except _Absent:
                continue
            if resp is not None:
                self.policy(arn, resp.get("Policy"))

    def sqs(self, region: str) -> None:
        sqs = self.client("sqs", region)
        urls = self.call("sqs", "ListQueues", lambda: _items(sqs, "list_queues", "QueueUrls"), region=region)
        for url in urls or []:
            try:
                resp = self.call("sqs", "GetQueueAttributes",
                                 lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "Policy"]),
                                 region=region, resource=url,
                                 absent=("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"))
            except _Absent:
                continue
            if resp is not None:
                attrs = resp.get("Attributes") or {}
                arn = attrs.get("QueueArn") or self.arn("sqs", region, url.rstrip("/").rsplit("/", 1)[-1])
                self.policy(arn, attrs.get("Policy"))

    def sns(self, region: str) -> None:
        sns = self.client("sns", region)
        topics = self.call("sns", "ListTopics", lambda: _items(sns, "list_topics", "Topics"), region=region)
        for t in topics or []:
            arn = t["TopicArn"]
            try:
                resp = self.call("sns", "GetTopicAttributes", lambda: sns.get_topic_attributes(TopicArn=arn),
                                 region=region, resource=arn, absent=("NotFound", "NotFoundException"))
            except _Absent:
                continue
            if resp is not None:
                self.policy(arn, (resp.get("Attributes") or {}).get("Policy"))

    def lambda_(self, region: str) -> None:
        lam = self.client("lambda", region)
        functions = self.call("lambda", "ListFunctions", lambda: _items(lam, "list_functions", "Functions"), region=region)
        for f in functions or []:
            arn = f["FunctionArn"]
            if f.get("Role"):
                self.workloads.append({"Arn": arn, "Role": f["Role"]})
            try:
                resp = self.call("lambda", "GetPolicy", lambda: lam.get_policy(FunctionName=arn),
                                 region=region, resource=arn, absent=("ResourceNotFoundException",))
            except _Absent:
                continue
            if resp is not None:
                self.policy(arn, resp.get("Policy"))

    def secretsmanager(self, region: str) -> None:
        sm = self.client("secretsmanager", region)
        secrets = self.call("secretsmanager", "ListSecrets", lambda: _items(sm, "list_secrets", "SecretList"), region=region)
        for s in secrets or []:
            arn = s["ARN"]
            try:
                resp = self.call("secretsmanager", "GetResourcePolicy", lambda: sm.get_resource_policy(SecretId=arn),
                                 region=region, resource=arn, absent=("ResourceNotFoundException",))
            except _Absent:
                continue
            if resp is not None:
                self.policy(arn, resp.get("ResourcePolicy"))

    def ecr(self, region: str) -> None:
        ecr = self.client("ecr", region)
        repos = self.call("ecr", "DescribeRepositories", lambda: _items(ecr, "describe_repositories", "repositories"),
                          region=region)
        for r in repos or []:
            arn = r["repositoryArn"]
            try:
                resp = self.call("ecr", "GetRepositoryPolicy",
                                 lambda: ecr.get_repository_policy(repositoryName=r["repositoryName"], registryId=r["registryId"]),
                                 region=region, resource=arn,
                                 absent=("RepositoryPolicyNotFoundException", "RepositoryNotFoundException"))
            except _Absent:
                continue
            if resp is not None:
                self.policy(arn, resp.get("policyText"))

    def ec2(self, region: str) -> None:
        ec2 = self.client("ec2", region)
        reservations = self.call("ec2", "DescribeInstances", lambda: _items(ec2, "describe_instances", "Reservations"),
                                 region=region)
        for res in reservations or []:
            for i in res.get("Instances") or []:
                profile = (i.get("IamInstanceProfile") or {}).get("Arn")
                if profile and (i.get("State") or {}).get("Name") != "terminated":
                    self.workloads.append({"Arn": self.arn("ec2", region, f"instance/{i['InstanceId']}"),
                                           "InstanceProfile": profile})

    def cloudformation(self, region: str) -> None:
        cfn = self.client("cloudformation", region)
        stacks = self.call("cloudformation", "DescribeStacks", lambda: _items(cfn, "describe_stacks", "Stacks"), region=region)
        for s in stacks or []:
            if s.get("RoleARN"):
                self.workloads.append({"Arn": s["StackId"], "Role": s["RoleARN"]})

    def glue(self, region: str) -> None:
        glue = self.client("glue", region)
        endpoints = self.call("glue", "GetDevEndpoints", lambda: _items(glue, "get_dev_endpoints", "DevEndpoints"),
                              region=region)
        for e in endpoints or []:
            if e.get("RoleArn"):
                self.workloads.append({"Arn": self.arn("glue", region, f"devEndpoint/{e['EndpointName']}"),
                                       "Role": e["RoleArn"]})
        jobs = self.call("glue", "GetJobs", lambda: _items(glue, "get_jobs", "Jobs"), region=region)
        for j in jobs or []:
            role = j.get("Role")
            if role:
                if not role.startswith("arn:"):
                    role = f"arn:{self.c.partition}:iam::{self.id}:role/{role}"
                self.workloads.append({"Arn": self.arn("glue", region, f"job/{j['Name']}"), "Role": role})

    def sagemaker(self, region: str) -> None:
        sm = self.client("sagemaker", region)
        notebooks = self.call("sagemaker", "ListNotebookInstances",
                              lambda: _items(sm, "list_notebook_instances", "NotebookInstances"), region=region)
        for n in notebooks or []:
            name, arn = n["NotebookInstanceName"], n["NotebookInstanceArn"]
            resp = self.call("sagemaker", "DescribeNotebookInstance",
                             lambda: sm.describe_notebook_instance(NotebookInstanceName=name), region=region, resource=arn)
            if resp and resp.get("RoleArn"):
                self.workloads.append({"Arn": arn, "Role": resp["RoleArn"]})

    def codebuild(self, region: str) -> None:
        cb = self.client("codebuild", region)
        names = self.call("codebuild", "ListProjects", lambda: _items(cb, "list_projects", "projects"), region=region)
        names = names or []
        for i in range(0, len(names), 100):
            chunk = names[i:i + 100]
            resp = self.call("codebuild", "BatchGetProjects", lambda: cb.batch_get_projects(names=chunk), region=region,
                             resource=",".join(chunk))
            for p in (resp or {}).get("projects") or []:
                if p.get("serviceRole"):
                    self.workloads.append({"Arn": p["arn"], "Role": p["serviceRole"]})

    def ecs(self, region: str) -> None:
        ecs = self.client("ecs", region)
        arns = self.call("ecs", "ListTaskDefinitions",
                         lambda: _items(ecs, "list_task_definitions", "taskDefinitionArns", status="ACTIVE"), region=region)
        for arn in arns or []:
            resp = self.call("ecs", "DescribeTaskDefinition", lambda: ecs.describe_task_definition(taskDefinition=arn),
                             region=region, resource=arn)
            td = (resp or {}).get("taskDefinition") or {}
            if td.get("taskRoleArn") or td.get("executionRoleArn"):
                w = {"Arn": arn}
                if td.get("taskRoleArn"):
                    w["Role"] = td["taskRoleArn"]
                if td.get("executionRoleArn"):
                    w["ExecutionRole"] = td["executionRoleArn"]
                self.workloads.append(w)

    REGIONAL: list[tuple[str, Callable[["_Account", str], None]]] = [
        ("kms", kms), ("sqs", sqs), ("sns", sns), ("lambda", lambda_), ("secretsmanager", secretsmanager),
        ("ecr", ecr), ("ec2", ec2), ("cloudformation", cloudformation), ("glue", glue), ("sagemaker", sagemaker),
        ("codebuild", codebuild), ("ecs", ecs),
    ]

    # -- output -----------------------------------------------------------------------------------

    def write(self, out: Path) -> None:
        folder = out / "accounts" / self.id
        _write_json(folder / "authorization-details.json", self.authz)
        resources: dict[str, Any] = {
            "ResourcePolicies": self.resource_policies,
            "Workloads": self.workloads,
            "Credentials": self.credentials,
        }
        if self.gaps:
            resources["Missing"] = [g.as_json() for g in self.gaps]
        _write_json(folder / "resources.json", resources)


class Collector:
    """Collects one account, or every account of an organization, into a snapshot folder.

    ``start()`` checks the credentials, reads the organization and plans the work; it raises
    ``CollectError`` when nothing can be collected.  It returns the steps to run (each is safe: a
    failure becomes a gap).  ``finish()`` writes the files and returns what was collected."""

    def __init__(self, out: str | os.PathLike, *, profile: str | None = None, regions: Iterable[str] = (),
                 all_regions: bool = False, endpoint_url: str | None = None, role_name: str | None = None):
        self.out = Path(out)
        self.profile = profile
        self.requested_regions = list(regions)
        self.all_regions = all_regions
        self.endpoint_url = endpoint_url
        self.role_name = role_name
        self.session: boto3.Session | None = None
        self.regions: list[str] = []
        self.partition = "aws"
        self.caller: dict = {}
        self.accounts: list[_Account] = []
        self.organization: dict | None = None
        self.organization_status = "skipped"
        self.org_gaps: list[Gap] = []
        self.gaps: list[Gap] = []
        self.started = ""

    # -- plumbing ---------------------------------------------------------------------------------

    def make_client(self, session: boto3.Session, service: str, region: str, probe: bool = False):
        options: dict[str, Any] = dict(_PROBE_CONFIG if probe else _CONFIG)
        if service == "s3" and self.endpoint_url:
            options["s3"] = {"addressing_style": "path"}
        return session.client(service, region_name=region, endpoint_url=self.endpoint_url, config=Config(**options))

    def guard(self, record: Callable[..., None], service: str, operation: str, fn: Callable[[], Any], *,
              region: str = "", resource: str = "", absent: Iterable[str] = ()) -> Any:
        try:
            return fn()
        except ClientError as e:
            code, message = _error_code(e)
            if code in set(absent):
                raise _Absent() from None
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            record(service, operation, region, resource, code, _kind(code, status), message)
        except EndpointConnectionError as e:
            record(service, operation, region, resource, type(e).__name__, "unreachable", str(e))
        except BotoCoreError as e:
            record(service, operation, region, resource, type(e).__name__, "error", str(e))
        except Exception as e:  # an answer of a shape we did not expect: keep going, say so
            record(service, operation, region, resource, type(e).__name__, "error", str(e))
        return None

    def org_gap(self, service: str, operation: str, region: str = "", resource: str = "", error: str = "",
                kind: str = "error", message: str = "") -> None:
        g = Gap(self.caller.get("Account", ""), service, operation, region, resource, error, kind, message)
        self.org_gaps.append(g)
        self.gaps.append(g)

    # -- start: credentials, organization, plan ---------------------------------------------------

    def start(self) -> list[Step]:
        self.started = _now()
        self._check_output()
        try:
            self.session = boto3.Session(profile_name=self.profile)
        except ProfileNotFound:
            raise CollectError(f"aws profile `{self.profile}` was not found",
                               "list the profiles with `aws configure list-profiles`") from None
        except BotoCoreError as e:
            raise CollectError(f"cannot read the aws configuration: {e}", "check `~/.aws/config`") from None
        self.regions = self.requested_regions or [self.session.region_name or DEFAULT_REGION]
        self._identify()
        if self.all_regions:
            self._all_regions()
        self._read_organization()
        self._plan_accounts()
        return [s for a in self.accounts for s in a.steps()]

    def _check_output(self) -> None:
        if self.out.exists():
            if not self.out.is_dir():
                raise CollectError(f"output `{self.out}` exists and is not a folder", "give a new folder to `-o`")
            if any(self.out.iterdir()):
                raise CollectError(f"output folder `{self.out}` is not empty",
                                   "give a new folder to `-o`, or remove this one")

    def _identify(self) -> None:
        where = f"`{self.endpoint_url}`" if self.endpoint_url else "aws"
        try:
            sts = self.make_client(self.session, "sts", self.regions[0], probe=True)
            ident = sts.get_caller_identity()
        except (NoCredentialsError, PartialCredentialsError):
            raise CollectError("no aws credentials were found",
                               "use `--profile`, set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
        except NoRegionError:
            raise CollectError("no aws region is configured", "give one with `--region`") from None
        except EndpointConnectionError:
            raise CollectError(f"cannot reach {where}",
                               "check the network, `--region` and `--endpoint-url`") from None
        except ClientError as e:
            code, message = _error_code(e)
            raise CollectError(f"{where} refused the credentials: `{code}`" + (f" ({message})" if message else ""),
                               "refresh the credentials or pick another `--profile`") from None
        except BotoCoreError as e:
            raise CollectError(f"cannot call {where}: {e}",
                               "check the credentials, `--region` and `--endpoint-url`") from None
        except ValueError as e:  # e.g. a malformed endpoint url
            raise CollectError(f"cannot call {where}: {e}", "check `--endpoint-url`") from None
        self.caller = {"Account": ident["Account"], "Arn": ident["Arn"]}
        self.partition = ident["Arn"].split(":")[1] if ident["Arn"].count(":") >= 5 else "aws"

    def _all_regions(self) -> None:
        ec2 = self.make_client(self.session, "ec2", self.regions[0])
        resp = self.guard(self.org_gap, "ec2", "DescribeRegions", lambda: ec2.describe_regions(AllRegions=False),
                          region=self.regions[0])
        if resp:
            self.regions = sorted(r["RegionName"] for r in resp.get("Regions") or [])
        self.org_gaps = [g for g in self.org_gaps if g.operation != "DescribeRegions"]  # not about the organization

    def _read_organization(self) -> None:
        org = self.make_client(self.session, "organizations", self.regions[0])
        read = lambda op, fn, resource="": self.guard(self.org_gap, "organizations", op, fn, resource=resource)  # noqa: E731
        desc = read("DescribeOrganization", org.describe_organization)
        if desc is None:
            last = self.org_gaps[-1] if self.org_gaps else None
            if last and last.error == "AWSOrganizationsNotInUseException":
                self.org_gaps.pop()
                self.gaps.remove(last)
                self.organization_status = "not-in-use"
            else:
                self.organization_status = "failed"
            return
        roots = read("ListRoots", lambda: _items(org, "list_roots", "Roots"))
        if roots is None:
            self.organization_status = "failed"
            return
        ous: list[dict] = []
        accounts: list[dict] = []
        parents = [r["Id"] for r in roots]
        while parents:
            parent = parents.pop(0)
            children = read("ListOrganizationalUnitsForParent",
                            lambda: _items(org, "list_organizational_units_for_parent", "OrganizationalUnits", ParentId=parent),
                            resource=parent)
            members = read("ListAccountsForParent",
                           lambda: _items(org, "list_accounts_for_parent", "Accounts", ParentId=parent), resource=parent)
            if children is None or members is None:
                self.organization_status = "failed"
                return
            for ou in children:
                ous.append({**ou, "ParentId": parent})
                parents.append(ou["Id"])
            accounts.extend({**a, "ParentId": parent} for a in members)
        policies: list[dict] = []
        for ptype in ("SERVICE_CONTROL_POLICY", "RESOURCE_CONTROL_POLICY"):
            listed = read("ListPolicies", lambda: _items(org, "list_policies", "Policies", Filter=ptype), resource=ptype)
            for p in listed or []:
                full = read("DescribePolicy", lambda: org.describe_policy(PolicyId=p["Id"]), resource=p["Id"])
                targets = read("ListTargetsForPolicy",
                               lambda: _items(org, "list_targets_for_policy", "Targets", PolicyId=p["Id"]), resource=p["Id"])
                if full is None or targets is None:
                    continue  # listed under Missing
                summary = (full.get("Policy") or {}).get("PolicySummary") or p
                policies.append({
                    **summary,
                    "Type": summary.get("Type", ptype),
                    "Content": _decode((full.get("Policy") or {}).get("Content")),
                    "Targets": [t["TargetId"] for t in targets],
                })
        self.organization = {
            "Organization": desc.get("Organization") or {},
            "Roots": roots,
            "OrganizationalUnits": ous,
            "Accounts": accounts,
            "Policies": policies,
        }
        self.organization_status = "collected"

    def _plan_accounts(self) -> None:
        me = self.caller["Account"]
        self.accounts = [_Account(self, me, "caller")]
        if not self.role_name:
            return
        if self.organization is None:
            self.org_gap("organizations", "ListAccountsForParent", error="NoOrganization", kind="error",
                         message=f"`--role-name {self.role_name}` needs the organization's account list; "
                                 f"collecting the caller's account only")
            return
        for a in self.organization["Accounts"]:
            state = a.get("State") or a.get("Status") or "ACTIVE"
            if a["Id"] != me and state == "ACTIVE":
                self.accounts.append(_Account(self, a["Id"], "assumed"))

    # -- finish -----------------------------------------------------------------------------------

    def finish(self) -> CollectionResult:
        self.out.mkdir(parents=True, exist_ok=True)
        written, failed = [], []
        for a in self.accounts:
            if a.failed or a.authz is None:
                failed.append(a.id)
                continue
            a.write(self.out)
            written.append(a.id)
        if self.organization is not None:
            org = dict(self.organization)
            if self.org_gaps:
                org["Missing"] = [g.as_json() for g in self.org_gaps]
            _write_json(self.out / "organization.json", org)
        _write_json(self.out / "collection-log.json", {
            "Version": 1,
            "Started": self.started,
            "Finished": _now(),
            "Caller": self.caller,
            "EndpointUrl": self.endpoint_url,
            "Regions": self.regions,
            "RoleName": self.role_name,
            "Accounts": [{"Id": a.id, "Access": a.access, "Status": "failed" if a.id in failed else "collected"}
                         for a in self.accounts],
            "Organization": self.organization_status,
            "Missing": [g.as_json() for g in self.gaps],
        })
        return CollectionResult(self.out, written, failed, self.organization_status, list(self.gaps))


def collect(out: str | os.PathLike, *, profile: str | None = None, regions: Iterable[str] = (),
            all_regions: bool = False, endpoint_url: str | None = None, role_name: str | None = None,
            progress: Callable[[list[Step]], Iterable[Step]] | None = None) -> CollectionResult:
    """Collect into the folder ``out`` (new or empty) and return what was collected.

    ``progress`` wraps the list of steps (e.g. in a progress bar) and yields them back.  Raises
    ``CollectError`` when nothing can be collected; partial failures are gaps in the result."""
    c = Collector(out, profile=profile, regions=regions, all_regions=all_regions,
                  endpoint_url=endpoint_url, role_name=role_name)
    steps = c.start()
    for step in (progress(steps) if progress else steps):
        step.run()
    return c.finish()
