"""`iam-reasoner collect` against a real moto HTTP server: what is created is what is written."""
from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from reasoner.cli import main

from .moto_server import KEYS, REGION, moto_server

MAIN = "123456789012"  # moto's default account: the organization's management account
DENIED = "333333333333"  # an account of its own for the access-denied test
REGIONS_ACCOUNT = "444444444444"  # and one for the several-regions test
ORG_ACCOUNT = "555555555555"  # management account of a second organization

# Environment that keeps boto3 away from the machine's own AWS configuration.
BASE_ENV = {
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_PROFILE": None,
    "AWS_DEFAULT_PROFILE": None,
    "AWS_SESSION_TOKEN": None,
    "AWS_SECURITY_TOKEN": None,
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": None,
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": None,
    "AWS_WEB_IDENTITY_TOKEN_FILE": None,
    "AWS_ROLE_ARN": None,
    "AWS_ENDPOINT_URL": None,
}
TEST_ENV = {**BASE_ENV, "AWS_ACCESS_KEY_ID": KEYS["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": KEYS["aws_secret_access_key"]}
NO_CREDENTIALS_ENV = {**BASE_ENV, "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None}


def doc(*statements) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action, resource="*", **extra) -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def trust(service) -> dict:
    return doc({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})


def run_cli(args, env=TEST_ENV):
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


def command() -> list[str]:
    """The installed `iam-reasoner` script of this interpreter's environment."""
    script = Path(sys.executable).with_name("iam-reasoner")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from reasoner.cli import main; main()"]


def read(path: Path):
    return json.loads(path.read_text())


# -- the estate ------------------------------------------------------------------------------------

VERSIONS = [doc(allow("s3:GetObject", "arn:aws:s3:::prod-data/*")),
            doc(allow(["s3:GetObject", "s3:ListBucket"], ["arn:aws:s3:::prod-data", "arn:aws:s3:::prod-data/*"])),
            doc(allow("s3:*"))]
ALICE_INLINE = doc(allow("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{MAIN}:jobs"))
GROUP_INLINE = doc(allow("iam:ListUsers"))
ROLE_INLINE = doc(allow("logs:PutLogEvents", "*"))
BOUNDARY = doc(allow(["s3:*", "sqs:*"]))
BUCKET_POLICY = doc({"Sid": "Read", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN}:role/etl"},
                     "Action": "s3:GetObject", "Resource": "arn:aws:s3:::prod-data/*"})
KEY_POLICY = {"Version": "2012-10-17", "Id": "custom", "Statement": [
    {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN}:root"}, "Action": "kms:*", "Resource": "*"},
    {"Sid": "Etl", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN}:role/etl"}, "Action": "kms:Decrypt", "Resource": "*"}]}
QUEUE_POLICY = doc({"Sid": "Send", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN}:user/alice"},
                    "Action": "sqs:SendMessage", "Resource": f"arn:aws:sqs:{REGION}:{MAIN}:jobs"})
TOPIC_POLICY = doc({"Sid": "Pub", "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sns:Publish", "Resource": f"arn:aws:sns:{REGION}:{MAIN}:alerts"})
SECRET_POLICY = doc({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN}:role/etl"},
                     "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
REPO_POLICY = doc({"Sid": "Pull", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MAIN}:root"},
                   "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]})
SCP = doc({"Effect": "Deny", "Action": "organizations:LeaveOrganization", "Resource": "*"})
RCP = doc({"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
           "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": "o-example"}}})


def build_estate(aws) -> dict:
    """Create the estate through the public APIs and return what the test expects to read back."""
    iam = aws.client("iam")
    data = iam.create_policy(PolicyName="ReadData", PolicyDocument=json.dumps(VERSIONS[0]), Description="data")["Policy"]["Arn"]
    for v in VERSIONS[1:]:
        iam.create_policy_version(PolicyArn=data, PolicyDocument=json.dumps(v), SetAsDefault=True)
    iam.set_default_policy_version(PolicyArn=data, VersionId="v2")
    boundary = iam.create_policy(PolicyName="Boundary", PolicyDocument=json.dumps(BOUNDARY))["Policy"]["Arn"]

    iam.create_user(UserName="alice")
    iam.create_user(UserName="bob", PermissionsBoundary=boundary)
    iam.put_user_policy(UserName="alice", PolicyName="send", PolicyDocument=json.dumps(ALICE_INLINE))
    iam.create_group(GroupName="devs")
    iam.add_user_to_group(GroupName="devs", UserName="alice")
    iam.put_group_policy(GroupName="devs", PolicyName="list", PolicyDocument=json.dumps(GROUP_INLINE))
    iam.attach_group_policy(GroupName="devs", PolicyArn=data)
    iam.create_access_key(UserName="alice")
    iam.create_login_profile(UserName="alice", Password="Correct-Horse-9")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="alice", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321")

    roles = {}
    for name, service in [("etl", "lambda.amazonaws.com"), ("web", "ec2.amazonaws.com"),
                          ("cfn", "cloudformation.amazonaws.com"), ("jobs", ["glue.amazonaws.com", "sagemaker.amazonaws.com",
                                                                             "codebuild.amazonaws.com", "ecs-tasks.amazonaws.com"])]:
        roles[name] = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust(service)))["Role"]["Arn"]
    iam.put_role_policy(RoleName="etl", PolicyName="logs", PolicyDocument=json.dumps(ROLE_INLINE))
    iam.attach_role_policy(RoleName="etl", PolicyArn=data)
    iam.put_role_permissions_boundary(RoleName="etl", PermissionsBoundary=boundary)
    profile = iam.create_instance_profile(InstanceProfileName="web")["InstanceProfile"]["Arn"]
    iam.add_role_to_instance_profile(InstanceProfileName="web", RoleName="web")

    s3 = aws.client("s3")
    s3.create_bucket(Bucket="prod-data")
    s3.put_bucket_policy(Bucket="prod-data", Policy=json.dumps(BUCKET_POLICY))
    s3.create_bucket(Bucket="no-policy-bucket")
    key = aws.client("kms").create_key(Policy=json.dumps(KEY_POLICY))["KeyMetadata"]["Arn"]
    queue = aws.client("sqs").create_queue(QueueName="jobs", Attributes={"Policy": json.dumps(QUEUE_POLICY)})["QueueUrl"]
    queue_arn = aws.client("sqs").get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic = aws.client("sns").create_topic(Name="alerts")["TopicArn"]
    aws.client("sns").set_topic_attributes(TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(TOPIC_POLICY))
    secret = aws.client("secretsmanager").create_secret(Name="db", SecretString="s3cr3t")["ARN"]
    aws.client("secretsmanager").put_resource_policy(SecretId="db", ResourcePolicy=json.dumps(SECRET_POLICY))
    aws.client("secretsmanager").create_secret(Name="no-policy", SecretString="x")
    repo = aws.client("ecr").create_repository(repositoryName="app")["repository"]["repositoryArn"]
    aws.client("ecr").set_repository_policy(repositoryName="app", policyText=json.dumps(REPO_POLICY))
    aws.client("ecr").create_repository(repositoryName="no-policy")

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("handler.py", "def handler(event, context):\n    return event\n")
    lam = aws.client("lambda")
    function = lam.create_function(FunctionName="etl", Runtime="python3.12", Role=roles["etl"], Handler="handler.handler",
                                   Code={"ZipFile": buf.getvalue()})["FunctionArn"]
    lam.add_permission(FunctionName="etl", StatementId="s3invoke", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::prod-data")
    function_policy = json.loads(lam.get_policy(FunctionName="etl")["Policy"])

    ec2 = aws.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, IamInstanceProfile={"Name": "web"})["Instances"][0]["InstanceId"]
    ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)  # no profile: not a workload
    template = json.dumps({"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "from-stack"}}}})
    stack = aws.client("cloudformation").create_stack(StackName="app", TemplateBody=template, RoleARN=roles["cfn"])["StackId"]
    aws.client("glue").create_dev_endpoint(EndpointName="dev", RoleArn=roles["jobs"])
    notebook = aws.client("sagemaker").create_notebook_instance(NotebookInstanceName="nb", InstanceType="ml.t2.medium",
                                                                RoleArn=roles["jobs"])["NotebookInstanceArn"]
    project = aws.client("codebuild").create_project(
        name="build", source={"type": "S3", "location": "prod-data/src.zip"}, artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole=roles["jobs"])["project"]["arn"]
    task = aws.client("ecs").register_task_definition(
        family="worker", taskRoleArn=roles["jobs"], containerDefinitions=[{"name": "w", "image": "busybox", "memory": 128}],
    )["taskDefinition"]["taskDefinitionArn"]

    org = aws.client("organizations")
    org.create_organization(FeatureSet="ALL")
    root = org.list_roots()["Roots"][0]["Id"]
    ou = org.create_organizational_unit(ParentId=root, Name="Prod")["OrganizationalUnit"]["Id"]
    member = org.create_account(Email="prod@example.com", AccountName="prod")["CreateAccountStatus"]["AccountId"]
    org.move_account(AccountId=member, SourceParentId=root, DestinationParentId=ou)
    org.enable_policy_type(RootId=root, PolicyType="SERVICE_CONTROL_POLICY")
    org.enable_policy_type(RootId=root, PolicyType="RESOURCE_CONTROL_POLICY")
    scp = org.create_policy(Name="DenyLeave", Description="no leaving", Type="SERVICE_CONTROL_POLICY", Content=json.dumps(SCP))
    org.attach_policy(PolicyId=scp["Policy"]["PolicySummary"]["Id"], TargetId=ou)
    rcp = org.create_policy(Name="OrgOnly", Description="org only", Type="RESOURCE_CONTROL_POLICY", Content=json.dumps(RCP))
    org.attach_policy(PolicyId=rcp["Policy"]["PolicySummary"]["Id"], TargetId=root)

    # CreateAccount makes OrganizationAccountAccessRole in the new account, as AWS does.
    aws.client("iam", aws.account_credentials(member)).create_user(UserName="carol")

    return {
        "data_policy": data, "boundary": boundary, "roles": roles, "profile": profile, "member": member, "root": root, "ou": ou,
        "scp": scp["Policy"]["PolicySummary"]["Id"], "rcp": rcp["Policy"]["PolicySummary"]["Id"],
        "policies": {
            "arn:aws:s3:::prod-data": BUCKET_POLICY, key: KEY_POLICY, queue_arn: QUEUE_POLICY, topic: TOPIC_POLICY,
            secret: SECRET_POLICY, repo: REPO_POLICY, function: function_policy,
        },
        "workloads": {
            function: ("Role", roles["etl"]),
            f"arn:aws:ec2:{REGION}:{MAIN}:instance/{instance}": ("InstanceProfile", profile),
            stack: ("Role", roles["cfn"]),
            f"arn:aws:glue:{REGION}:{MAIN}:devEndpoint/dev": ("Role", roles["jobs"]),
            notebook: ("Role", roles["jobs"]),
            project: ("Role", roles["jobs"]),
            task: ("Role", roles["jobs"]),
        },
    }


@pytest.fixture(scope="module")
def aws():
    with moto_server() as server:
        yield server


@pytest.fixture(scope="module")
def estate(aws):
    return build_estate(aws)


@pytest.fixture(scope="module")
def collected(aws, estate, tmp_path_factory):
    """One organization-wide collection through the CLI, as a user would run it."""
    out = tmp_path_factory.mktemp("collect") / "snapshot"
    result = run_cli(["collect", "--endpoint-url", aws.url, "--region", REGION, "--role-name",
                      "OrganizationAccountAccessRole", "-o", str(out)])
    return result, out


def by_name(items, key):
    return {i[key]: i for i in items}


# -- tests ---------------------------------------------------------------------------------------


def test_collect_exits_zero_and_writes_the_layout(collected, estate):
    result, out = collected
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    m = estate["member"]
    assert files == sorted([
        "collection-log.json", "organization.json",
        f"accounts/{MAIN}/authorization-details.json", f"accounts/{MAIN}/resources.json",
        f"accounts/{m}/authorization-details.json", f"accounts/{m}/resources.json",
    ])
    log = read(out / "collection-log.json")
    assert log["Caller"]["Account"] == MAIN
    assert log["Organization"] == "collected"
    assert {(a["Id"], a["Access"], a["Status"]) for a in log["Accounts"]} == {
        (MAIN, "caller", "collected"), (m, "assumed", "collected")}
    assert f"collected 2 account(s), organization into `{out}`" in result.stdout


def test_authorization_details_hold_what_was_created(collected, estate):
    _, out = collected
    details = read(out / "accounts" / MAIN / "authorization-details.json")
    assert set(details) == {"UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"}
    users = by_name(details["UserDetailList"], "UserName")
    groups = by_name(details["GroupDetailList"], "GroupName")
    roles = by_name(details["RoleDetailList"], "RoleName")
    policies = by_name(details["Policies"], "PolicyName")
    assert set(users) == {"alice", "bob"}
    assert set(groups) == {"devs"}
    assert set(roles) == {"etl", "web", "cfn", "jobs"}
    assert set(policies) == {"ReadData", "Boundary"}

    alice, bob = users["alice"], users["bob"]
    assert alice["GroupList"] == ["devs"]
    assert alice["UserPolicyList"] == [{"PolicyName": "send", "PolicyDocument": ALICE_INLINE}]
    assert bob["GroupList"] == [] and bob["UserPolicyList"] == []  # (moto leaves user boundaries out of this API)
    assert groups["devs"]["GroupPolicyList"] == [{"PolicyName": "list", "PolicyDocument": GROUP_INLINE}]
    assert groups["devs"]["AttachedManagedPolicies"] == [{"PolicyName": "ReadData", "PolicyArn": estate["data_policy"]}]

    etl = roles["etl"]
    assert etl["AssumeRolePolicyDocument"] == trust("lambda.amazonaws.com")
    assert etl["RolePolicyList"] == [{"PolicyName": "logs", "PolicyDocument": ROLE_INLINE}]
    assert etl["AttachedManagedPolicies"] == [{"PolicyName": "ReadData", "PolicyArn": estate["data_policy"]}]
    assert etl["PermissionsBoundary"]["PermissionsBoundaryArn"] == estate["boundary"]
    assert [p["Arn"] for p in roles["web"]["InstanceProfileList"]] == [estate["profile"]]

    data = policies["ReadData"]
    versions = {v["VersionId"]: v for v in data["PolicyVersionList"]}
    assert set(versions) == {"v1", "v2", "v3"}
    assert [v for v, body in versions.items() if body["IsDefaultVersion"]] == ["v2"]
    assert data["DefaultVersionId"] == "v2"
    assert [versions[f"v{i + 1}"]["Document"] for i in range(3)] == VERSIONS
    assert data["AttachmentCount"] == 2

    member = read(out / "accounts" / estate["member"] / "authorization-details.json")
    assert [u["UserName"] for u in member["UserDetailList"]] == ["carol"]
    assert [r["RoleName"] for r in member["RoleDetailList"]] == ["OrganizationAccountAccessRole"]
    assert all(u["Arn"].startswith(f"arn:aws:iam::{estate['member']}:") for u in member["UserDetailList"])


def test_resource_policies_decoded_and_complete(collected, estate):
    _, out = collected
    resources = read(out / "accounts" / MAIN / "resources.json")
    got = {p["Arn"]: p["Policy"] for p in resources["ResourcePolicies"]}
    assert got == estate["policies"]  # exactly these: resources without a policy are not listed
    assert "Missing" not in resources


def test_workloads_mapped_to_their_roles(collected, estate):
    _, out = collected
    resources = read(out / "accounts" / MAIN / "resources.json")
    got = {}
    for w in resources["Workloads"]:
        (kind,) = [k for k in ("Role", "InstanceProfile") if k in w]
        got[w["Arn"]] = (kind, w[kind])
    assert got == estate["workloads"]


def test_credentials_per_user(collected):
    _, out = collected
    resources = read(out / "accounts" / MAIN / "resources.json")
    assert sorted(resources["Credentials"], key=lambda c: c["User"]) == [
        {"User": f"arn:aws:iam::{MAIN}:user/alice", "AccessKeys": 1, "LoginProfile": True, "MFADevices": 1},
        {"User": f"arn:aws:iam::{MAIN}:user/bob", "AccessKeys": 0, "LoginProfile": False, "MFADevices": 0},
    ]


def test_organization_tree_and_policies(collected, estate):
    _, out = collected
    org = read(out / "organization.json")
    assert org["Organization"]["MasterAccountId"] == MAIN
    assert [r["Id"] for r in org["Roots"]] == [estate["root"]]
    assert [(o["Id"], o["Name"], o["ParentId"]) for o in org["OrganizationalUnits"]] == [(estate["ou"], "Prod", estate["root"])]
    assert {(a["Id"], a["ParentId"]) for a in org["Accounts"]} == {(MAIN, estate["root"]), (estate["member"], estate["ou"])}
    policies = by_name(org["Policies"], "Name")
    assert set(policies) == {"FullAWSAccess", "DenyLeave", "RCPFullAWSAccess", "OrgOnly"}
    assert policies["DenyLeave"]["Type"] == "SERVICE_CONTROL_POLICY"
    assert policies["DenyLeave"]["Content"] == SCP
    assert policies["DenyLeave"]["Targets"] == [estate["ou"]]
    assert policies["OrgOnly"]["Type"] == "RESOURCE_CONTROL_POLICY"
    assert policies["OrgOnly"]["Content"] == RCP
    assert policies["OrgOnly"]["Targets"] == [estate["root"]]
    assert estate["root"] in policies["FullAWSAccess"]["Targets"]
    assert policies["FullAWSAccess"]["Content"]["Statement"][0]["Effect"] == "Allow"
    assert "Missing" not in org


def test_collect_as_a_real_process_matches(aws, estate, collected, tmp_path):
    """The installed command, in its own process, with credentials from the environment only."""
    _, first = collected
    out = tmp_path / "snap"
    env = {k: v for k, v in os.environ.items() if k not in TEST_ENV}
    env.update({k: v for k, v in TEST_ENV.items() if v is not None})
    proc = subprocess.run([*command(), "collect", "--endpoint-url", aws.url, "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout.strip() == f"collected 1 account(s), organization into `{out}`"
    for name in ("authorization-details.json", "resources.json"):
        assert read(out / "accounts" / MAIN / name) == read(first / "accounts" / MAIN / name)
    assert read(out / "organization.json") == read(first / "organization.json")
    assert not (out / "accounts" / estate["member"]).exists()  # no --role-name: the caller's account only


def test_access_denied_is_missing_data_and_the_rest_is_written(aws, tmp_path):
    """moto enforces IAM here: the collecting user may read everything but KMS."""
    admin = aws.account_credentials(DENIED)
    iam = aws.client("iam", admin)
    iam.create_user(UserName="collector")
    iam.put_user_policy(UserName="collector", PolicyName="read", PolicyDocument=json.dumps(
        doc(allow("*"), {"Effect": "Deny", "Action": "kms:*", "Resource": "*"})))
    key = iam.create_access_key(UserName="collector")["AccessKey"]
    aws.client("kms", admin).create_key(Description="hidden")
    aws.client("s3", admin).create_bucket(Bucket="denied-acct-bucket")
    aws.client("s3", admin).put_bucket_policy(Bucket="denied-acct-bucket", Policy=json.dumps(BUCKET_POLICY))
    aws.client("sqs", admin).create_queue(QueueName="denied-acct-queue", Attributes={"Policy": json.dumps(QUEUE_POLICY)})

    out = tmp_path / "snap"
    env = {**TEST_ENV, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    with aws.enforcing_iam():
        result = run_cli(["collect", "--endpoint-url", aws.url, "-o", str(out), "-q"], env=env)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "warning: `kms` in 333333333333 us-east-1: AccessDenied" in result.stderr
    assert "collection-log.json" in result.stderr

    log = read(out / "collection-log.json")
    kms = [g for g in log["Missing"] if g["Service"] == "kms"]
    assert kms == [{"Account": DENIED, "Service": "kms", "Region": REGION, "Operation": "ListKeys", "Resource": "",
                    "Error": "AccessDenied", "Kind": "access-denied", "Message": kms[0]["Message"]}]
    assert "kms:ListKeys" in kms[0]["Message"]
    resources = read(out / "accounts" / DENIED / "resources.json")
    assert kms[0] in resources["Missing"]
    details = read(out / "accounts" / DENIED / "authorization-details.json")
    assert [u["UserName"] for u in details["UserDetailList"]] == ["collector"]
    arns = {p["Arn"] for p in resources["ResourcePolicies"]}
    assert "arn:aws:s3:::denied-acct-bucket" in arns
    assert f"arn:aws:sqs:{REGION}:{DENIED}:denied-acct-queue" in arns
    assert not any(a.startswith("arn:aws:kms:") for a in arns)
    assert log["Organization"] == "not-in-use"


def test_no_credentials_exit_2_with_one_line(tmp_path):
    result = run_cli(["collect", "-o", str(tmp_path / "snap")], env=NO_CREDENTIALS_ENV)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert lines == ["error: no aws credentials were found; hint: use `--profile`, set AWS_PROFILE, "
                     "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"]
    assert not (tmp_path / "snap").exists()


def test_no_credentials_as_a_real_process(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({k: v for k, v in NO_CREDENTIALS_ENV.items() if v is not None})
    proc = subprocess.run([*command(), "collect", "-o", str(tmp_path / "s")],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("error: no aws credentials were found; hint: ")


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_exit_2(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}"
    result = run_cli(["collect", "--endpoint-url", url, "-o", str(tmp_path / "snap")])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        f"error: cannot reach `{url}`; hint: check the network, `--region` and `--endpoint-url`"]


def test_unknown_profile_exit_2(tmp_path):
    result = run_cli(["collect", "--profile", "nope", "-o", str(tmp_path / "snap")])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: aws profile `nope` was not found; hint: list the profiles with `aws configure list-profiles`"]


def test_non_empty_output_folder_is_refused(aws, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli(["collect", "--endpoint-url", aws.url, "-o", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: output folder `{tmp_path}` is not empty; hint: give a new folder to `-o`, or remove this one"]
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_collected_folder_loads_with_matching_counts(collected, estate):
    from reasoner.load import load

    _, out = collected
    loaded = load(out)
    assert set(loaded.accounts) == {MAIN, estate["member"]}
    main_account = loaded.accounts[MAIN]
    assert (len(main_account.users), len(main_account.groups), len(main_account.roles), len(main_account.managed_policies)) == (2, 1, 4, 2)
    assert set(main_account.resource_policies) == set(estate["policies"])
    assert {(w.arn, w.role_arn) for w in main_account.workloads} == {
        (arn, estate["roles"]["web"] if kind == "InstanceProfile" else role) for arn, (kind, role) in estate["workloads"].items()}
    assert set(main_account.credentials) == {f"arn:aws:iam::{MAIN}:user/alice", f"arn:aws:iam::{MAIN}:user/bob"}
    member = loaded.accounts[estate["member"]]
    assert (len(member.users), len(member.roles)) == (1, 1)
    org = loaded.organization
    assert org.master_account == MAIN
    assert org.accounts == {MAIN: estate["root"], estate["member"]: estate["ou"]}
    assert sorted(p.name for p in org.scps) == ["DenyLeave", "FullAWSAccess"]
    assert sorted(p.name for p in org.rcps) == ["OrgOnly", "RCPFullAWSAccess"]
    # ECR repository policies name no Resource (the repository is implied), as AWS writes them; a
    # resource-based policy may, so nothing in the collected folder draws a problem.
    assert [w.message for w in loaded.warnings] == []


def test_several_regions_and_session_credentials(aws, tmp_path):
    """Regional services are read in every `--region`; temporary credentials come from the environment."""
    creds = aws.account_credentials(REGIONS_ACCOUNT)
    aws.client("iam", creds).create_user(UserName="dora")
    east = aws.client("sqs", creds).create_queue(QueueName="east", Attributes={"Policy": json.dumps(QUEUE_POLICY)})["QueueUrl"]
    west = aws.client("sqs", creds, region="eu-west-1").create_queue(
        QueueName="west", Attributes={"Policy": json.dumps(QUEUE_POLICY)})["QueueUrl"]
    assert east != west
    env = {**TEST_ENV, "AWS_ACCESS_KEY_ID": creds["aws_access_key_id"], "AWS_SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
           "AWS_SESSION_TOKEN": creds["aws_session_token"]}
    out = tmp_path / "snap"
    result = run_cli(["collect", "--endpoint-url", aws.url, "--region", "us-east-1", "--region", "eu-west-1", "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    log = read(out / "collection-log.json")
    assert log["Regions"] == ["us-east-1", "eu-west-1"]
    assert log["Caller"]["Account"] == REGIONS_ACCOUNT
    resources = read(out / "accounts" / REGIONS_ACCOUNT / "resources.json")
    assert {p["Arn"]: p["Policy"] for p in resources["ResourcePolicies"]} == {
        f"arn:aws:sqs:us-east-1:{REGIONS_ACCOUNT}:east": QUEUE_POLICY,
        f"arn:aws:sqs:eu-west-1:{REGIONS_ACCOUNT}:west": QUEUE_POLICY,
    }


def test_member_account_that_cannot_be_entered_is_marked_failed(aws, tmp_path):
    """With `--role-name`, an account whose role cannot be assumed is a gap; the others are written."""
    admin = aws.account_credentials(ORG_ACCOUNT)
    org = aws.client("organizations", admin)
    org.create_organization(FeatureSet="ALL")
    member = org.create_account(Email="locked@example.com", AccountName="locked")["CreateAccountStatus"]["AccountId"]
    iam = aws.client("iam", admin)
    iam.create_user(UserName="collector")
    iam.put_user_policy(UserName="collector", PolicyName="read", PolicyDocument=json.dumps(
        doc(allow("*"), {"Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"})))
    key = iam.create_access_key(UserName="collector")["AccessKey"]

    out = tmp_path / "snap"
    env = {**TEST_ENV, "AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    with aws.enforcing_iam():
        result = run_cli(["collect", "--endpoint-url", aws.url, "--role-name", "OrganizationAccountAccessRole",
                          "-o", str(out), "-q"], env=env)
    assert result.exit_code == 0, result.output
    assert f"warning: `sts` in {member}: AccessDenied" in result.stderr
    assert "1 account(s) failed" in result.stdout
    log = read(out / "collection-log.json")
    assert {(a["Id"], a["Status"]) for a in log["Accounts"]} == {(ORG_ACCOUNT, "collected"), (member, "failed")}
    (gap,) = [g for g in log["Missing"] if g["Service"] == "sts"]
    assert (gap["Operation"], gap["Resource"], gap["Kind"]) == (
        "AssumeRole", f"arn:aws:iam::{member}:role/OrganizationAccountAccessRole", "access-denied")
    assert sorted(p.name for p in (out / "accounts").iterdir()) == [ORG_ACCOUNT]
    assert {a["Id"] for a in read(out / "organization.json")["Accounts"]} == {ORG_ACCOUNT, member}
