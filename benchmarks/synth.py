"""Seeded synthetic estates in snapshot format v1, for the benchmarks.

    python benchmarks/synth.py --roles 5000 --policies 1500 --seed 7 -o DIR
    python benchmarks/synth.py --roles 5000 --policies 1500 --seed 7 --single-account -o DIR1

Writes ``DIR/organization.json`` and ``DIR/accounts/<id>/{authorization-details,resources}.json``
(the layout of ../shared/SNAPSHOT.md) and ``DIR/synth-manifest.json``: the parameters, the counts
per account as a loader should find them, and the privilege-escalation paths planted on purpose.
The same arguments give the same bytes (one ``random.Random(seed)``, every choice made in a fixed
order, no clock).

What an estate holds:

- an organization: a management account, an identity account where most people live, workload
  accounts in Prod / Dev / Sandbox OUs; SCPs (FullAWSAccess, deny leaving the organization, a
  region guard on Sandbox with exceptions, no IAM users or access keys in Prod except for the
  organization access role);
- roles of several kinds: service roles (Lambda, EC2 through instance profiles, ECS tasks,
  CodeBuild, CloudFormation, Glue), people's roles trusting the identity account (many with an
  MFA condition), SAML-federated roles, cross-account chain roles that trust specific roles one
  tier up (chains of up to four hops across accounts, some with sts:ExternalId), third-party
  roles trusting an account outside the organization, and OrganizationAccountAccessRole in every
  member account;
- users (most in the identity account) in groups, with credentials state;
- managed policies: customer ones written from templates with realistic wildcards (``s3:Get*``,
  ``ec2:Describe*``, ``logs:*``, now and then ``*``), resource constraints, conditions (MFA,
  aws:SourceIp, principal and resource tags, iam:PassedToService, kms:ViaService), some with a
  second version; and a realistic share of real AWS managed policies taken from
  ../shared/data/aws-managed-policies.jsonl (the common ones always, the rest sampled), listed in
  each account where they are attached, as `get-account-authorization-details` does;
- inline policies on users, groups and roles; permission boundaries on some roles and users;
- workloads (Lambda functions, EC2 instances, CloudFormation stacks, CodeBuild projects);
- S3 bucket policies (TLS-only deny, cross-account and organization-wide reads), KMS key
  policies, SQS queue policies;
- planted escalation paths: iam:PassRole + lambda:CreateFunction + lambda:InvokeFunction towards
  an administrator role Lambda may assume, iam:CreatePolicyVersion on a customer policy the
  actor holds, iam:PassRole + ec2:RunInstances towards an administrator instance profile.

``--policies`` counts distinct managed policies: customer managed ones (boundaries included)
plus the distinct AWS managed ones used.  ``--single-account`` writes the same estate as one
account (every account id rewritten to one; the per-account OrganizationAccountAccessRole kept
once; no organization.json, since a one-account tool does not read SCPs): the variant a
one-account tool such as PMapper can read.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
AWS_MANAGED = SHARED / "data" / "aws-managed-policies.jsonl"

REGIONS = ("us-east-1", "us-east-1", "us-east-1", "eu-west-1", "us-west-2")
TEAMS = ("payments", "orders", "search", "identity", "data", "ml", "web", "mobile", "platform", "billing", "growth", "ledger")
EXTERNAL_ACCOUNT = "999988887777"  # a vendor outside the organization
OFFICE_CIDRS = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/25")
V = "2012-10-17"

# AWS managed policies real estates attach most, with a weight (how often one is drawn).
COMMON_AWS = {
    "ReadOnlyAccess": 6, "ViewOnlyAccess": 4, "SecurityAudit": 3, "PowerUserAccess": 2, "AdministratorAccess": 0,
    "AmazonS3ReadOnlyAccess": 8, "AmazonS3FullAccess": 2, "AmazonEC2ReadOnlyAccess": 5, "AmazonEC2FullAccess": 1,
    "AWSLambdaBasicExecutionRole": 0, "AWSLambdaVPCAccessExecutionRole": 0, "AmazonSSMManagedInstanceCore": 0,
    "CloudWatchAgentServerPolicy": 0, "AmazonECSTaskExecutionRolePolicy": 0, "AmazonDynamoDBReadOnlyAccess": 4,
    "AWSCloudFormationReadOnlyAccess": 2, "IAMReadOnlyAccess": 2, "IAMFullAccess": 0, "CloudWatchReadOnlyAccess": 4,
    "AmazonSQSFullAccess": 1, "AmazonSNSReadOnlyAccess": 2, "AWSCodeBuildDeveloperAccess": 1, "AmazonRDSReadOnlyAccess": 2,
}


class Synth:
    def __init__(self, roles: int, policies: int, seed: int, users: int | None = None, groups: int | None = None,
                 accounts: int | None = None, aws_share: float = 0.2, planted: int | None = None):
        if roles < 20:
            raise SystemExit("--roles must be at least 20")
        self.n_roles = roles
        self.n_policies = max(policies, 10)
        self.seed = seed
        self.rng = random.Random(seed)
        self.n_users = users if users is not None else max(10, roles // 10)
        self.n_groups = groups if groups is not None else max(4, self.n_users // 25)
        self.n_accounts = accounts if accounts is not None else max(4, min(60, roles // 500))
        self.aws_share = aws_share
        self.n_planted = planted if planted is not None else max(3, roles // 250)
        self.accounts: list[str] = []
        self.names: dict[str, str] = {}
        self.ou_of: dict[str, str] = {}
        self.authz: dict[str, dict] = {}
        self.res: dict[str, dict] = {}
        self.aws_used: dict[str, set] = {}
        self.aws_docs: dict[str, dict] = {}
        self.planted: list[dict] = []
        self._n = 0

    # ------------------------------------------------------------------ helpers

    def uid(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n:0>17X}"[:21]

    def date(self) -> str:
        r = self.rng
        return f"20{r.randint(19, 25)}-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}+00:00"

    def pick(self, seq, k=1):
        return self.rng.sample(seq, min(k, len(seq)))

    # ------------------------------------------------------------------ organization

    def make_accounts(self):
        base = 100000000000 + (self.seed % 9000) * 10000000
        self.accounts = [str(base + 1111111 * (i + 1)) for i in range(self.n_accounts)]
        self.mgmt, self.identity = self.accounts[0], self.accounts[1]
        self.names[self.mgmt], self.names[self.identity] = "management", "identity"
        self.ou_of[self.mgmt] = "root"
        self.ou_of[self.identity] = "security"
        kinds = ("prod", "dev", "sandbox", "prod", "dev")
        for i, a in enumerate(self.accounts[2:]):
            k = kinds[i % len(kinds)]
            self.names[a] = f"{k}-{i:02d}"
            self.ou_of[a] = k
        for a in self.accounts:
            self.authz[a] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
            self.res[a] = {"ResourcePolicies": [], "Workloads": [], "Credentials": []}
            self.aws_used[a] = set()

    def organization(self) -> dict:
        root = "r-" + f"{self.seed:04x}"[-4:]
        ous = {k: f"ou-{root[2:]}-{i + 1:08d}" for i, k in enumerate(("security", "prod", "dev", "sandbox"))}
        guard = {"StringNotEquals": {"aws:RequestedRegion": ["us-east-1", "eu-west-1"]},
                 "ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/OrganizationAccountAccessRole"}}
        pols = [
            {"Id": "p-RCPFullAWSAccess", "Name": "RCPFullAWSAccess", "Type": "RESOURCE_CONTROL_POLICY", "AwsManaged": True,
             "Content": {"Version": V, "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]},
             "Targets": [root, *ous.values(), *self.accounts]},
            {"Id": "p-FullAWSAccess", "Name": "FullAWSAccess", "Type": "SERVICE_CONTROL_POLICY", "AwsManaged": True,
             "Content": {"Version": V, "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]},
             "Targets": [root, *ous.values(), *self.accounts]},
            {"Id": "p-denyleave01", "Name": "DenyLeaveOrganization", "Type": "SERVICE_CONTROL_POLICY",
             "Content": json.dumps({"Version": V, "Statement": [{"Sid": "NoLeaving", "Effect": "Deny", "Action": ["organizations:LeaveOrganization", "account:CloseAccount"], "Resource": "*"}]}),
             "Targets": [root]},
            {"Id": "p-regionguard", "Name": "SandboxRegions", "Type": "SERVICE_CONTROL_POLICY",
             "Content": {"Version": V, "Statement": [{"Sid": "DenyOtherRegions", "Effect": "Deny",
                         "NotAction": ["iam:*", "sts:*", "organizations:*", "support:*", "cloudfront:*", "route53:*"],
                         "Resource": "*", "Condition": guard}]},
             "Targets": [ous["sandbox"]]},
            {"Id": "p-noiamusers", "Name": "ProdNoIamUsers", "Type": "SERVICE_CONTROL_POLICY",
             "Content": {"Version": V, "Statement": [{"Sid": "NoLongTermCredentials", "Effect": "Deny",
                         "Action": ["iam:CreateUser", "iam:CreateAccessKey", "iam:CreateLoginProfile"], "Resource": "*",
                         "Condition": {"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/OrganizationAccountAccessRole"}}}]},
             "Targets": [ous["prod"]]},
            {"Id": "p-rcpoidentity", "Name": "OrgOnlyBuckets", "Type": "RESOURCE_CONTROL_POLICY",
             "Content": {"Version": V, "Statement": [{"Sid": "OrgOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*",
                         "Condition": {"StringNotEqualsIfExists": {"aws:PrincipalOrgID": f"o-{self.seed:010x}"[-12:]},
                                       "BoolIfExists": {"aws:PrincipalIsAWSService": "false"}}}]},
             "Targets": [ous["prod"]]},
        ]
        return {
            "Organization": {"Id": f"o-{self.seed:010x}"[-12:], "MasterAccountId": self.mgmt},
            "Roots": [{"Id": root, "Name": "Root"}],
            "OrganizationalUnits": [{"Id": ous[k], "Name": k.capitalize(), "ParentId": root} for k in ous],
            "Accounts": [{"Id": a, "Name": self.names[a], "ParentId": root if self.ou_of[a] == "root" else ous[self.ou_of[a]]} for a in self.accounts],
            "Policies": pols,
        }

    # ------------------------------------------------------------------ resources named by policies

    def make_resources(self):
        r = self.rng
        self.buckets, self.keys, self.tables, self.queues = {}, {}, {}, {}
        for a in self.accounts:
            n = max(2, self.roles_in[a] // 12)
            self.buckets[a] = [f"{self.names[a]}-{r.choice(TEAMS)}-{j}-{a[-4:]}" for j in range(n)]
            self.keys[a] = [f"arn:aws:kms:us-east-1:{a}:key/{r.getrandbits(128):032x}" for _ in range(max(1, n // 4))]
            self.tables[a] = [f"arn:aws:dynamodb:us-east-1:{a}:table/{r.choice(TEAMS)}-{j}" for j in range(max(1, n // 3))]
            self.queues[a] = [f"arn:aws:sqs:us-east-1:{a}:{r.choice(TEAMS)}-events-{j}" for j in range(max(1, n // 6))]

    # ------------------------------------------------------------------ statement templates

    def statement(self, a: str, allow_broad: bool = True) -> dict:
        r = self.rng
        b = r.choice(self.buckets[a])
        t = r.random()
        if t < 0.16:
            return {"Effect": "Allow", "Action": r.choice([["s3:Get*", "s3:List*"], ["s3:GetObject", "s3:ListBucket"], "s3:Get*"]),
                    "Resource": [f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"]}
        if t < 0.24:
            return {"Effect": "Allow", "Action": ["s3:PutObject", "s3:DeleteObject"],
                    "Resource": r.choice([f"arn:aws:s3:::{b}/${{aws:username}}/*", f"arn:aws:s3:::{b}/{r.choice(TEAMS)}/*", f"arn:aws:s3:::{b}/*"])}
        if t < 0.34:
            return {"Effect": "Allow", "Action": r.choice([["ec2:Describe*"], ["ec2:Describe*", "elasticloadbalancing:Describe*", "autoscaling:Describe*"], ["cloudwatch:Get*", "cloudwatch:List*", "cloudwatch:Describe*"]]), "Resource": "*"}
        if t < 0.42:
            return {"Effect": "Allow", "Action": r.choice([["logs:CreateLogStream", "logs:PutLogEvents"], "logs:*"]),
                    "Resource": f"arn:aws:logs:{r.choice(REGIONS)}:{a}:log-group:/aws/{r.choice(['lambda', 'ecs', 'codebuild'])}/{r.choice(TEAMS)}-*"}
        if t < 0.50:
            return {"Effect": "Allow", "Action": r.choice([["dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"], ["dynamodb:*"], ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem"]]),
                    "Resource": [t2 := r.choice(self.tables[a]), f"{t2}/index/*"]}
        if t < 0.56:
            return {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": r.choice(self.keys[a]),
                    "Condition": {"StringEquals": {"kms:ViaService": [f"s3.us-east-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com"]}}}
        if t < 0.62:
            return {"Effect": "Allow", "Action": ["ec2:StartInstances", "ec2:StopInstances", "ec2:RebootInstances"],
                    "Resource": f"arn:aws:ec2:*:{a}:instance/*",
                    "Condition": {"StringEquals": {"aws:ResourceTag/team": "${aws:PrincipalTag/team}"}}}
        if t < 0.67:
            return {"Effect": "Deny", "Action": "*", "Resource": "*",
                    "Condition": {"NotIpAddress": {"aws:SourceIp": list(self.pick(OFFICE_CIDRS, r.randint(1, 3)))}, "Bool": {"aws:ViaAWSService": "false"}}}
        if t < 0.72:
            return {"Effect": "Allow", "Action": r.choice([["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage"], "sqs:*", ["sns:Publish"]]),
                    "Resource": r.choice(self.queues[a]) if r.random() < 0.7 else f"arn:aws:sqs:*:{a}:*"}
        if t < 0.77:
            return {"Effect": "Allow", "Action": ["iam:Get*", "iam:List*"], "Resource": "*"}
        if t < 0.82:
            return {"Effect": "Allow", "Action": r.choice([["lambda:*"], ["lambda:InvokeFunction", "lambda:GetFunction"], ["lambda:UpdateFunctionCode", "lambda:UpdateFunctionConfiguration", "lambda:GetFunction"]]),
                    "Resource": f"arn:aws:lambda:us-east-1:{a}:function:{r.choice(TEAMS)}-*"}
        if t < 0.86:
            st = {"Effect": "Allow", "Action": "iam:PassRole", "Resource": f"arn:aws:iam::{a}:role/{r.choice(['svc', 'lambda', 'ecs'])}-{r.choice(TEAMS)}-*"}
            if r.random() < 0.7:
                st["Condition"] = {"StringEquals": {"iam:PassedToService": r.choice(["lambda.amazonaws.com", "ecs-tasks.amazonaws.com", "ec2.amazonaws.com"])}}
            return st
        if t < 0.90:
            return {"Effect": "Allow", "Action": r.choice([["secretsmanager:GetSecretValue"], ["ssm:GetParameter*"]]),
                    "Resource": r.choice([f"arn:aws:secretsmanager:us-east-1:{a}:secret:{r.choice(TEAMS)}/*", f"arn:aws:ssm:us-east-1:{a}:parameter/{r.choice(TEAMS)}/*"])}
        if t < 0.93:
            return {"Effect": "Deny", "NotAction": ["iam:ChangePassword", "iam:GetUser", "iam:*MFADevice*", "sts:GetSessionToken"], "Resource": "*",
                    "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}}
        if t < 0.96:
            return {"Effect": "Allow", "Action": ["cloudformation:Describe*", "cloudformation:List*", "cloudformation:Get*"], "Resource": "*"}
        if t < 0.985 or not allow_broad:
            return {"Effect": "Allow", "Action": [f"{s}:*" for s in self.pick(["s3", "ec2", "rds", "ecs", "ecr", "cloudwatch", "sns", "sqs", "athena", "glue"], r.randint(2, 4))],
                    "Resource": "*", "Condition": {"StringEquals": {"aws:RequestedRegion": r.choice(["us-east-1", "eu-west-1"])}}}
        return {"Effect": "Allow", "Action": "*", "Resource": "*"}

    def document(self, a: str, n: int, allow_broad: bool = True) -> dict:
        sts = []
        for j in range(n):
            st = self.statement(a, allow_broad)
            sts.append({"Sid": f"S{j}{self.rng.randrange(1000)}", **st} if self.rng.random() < 0.5 else st)
        return {"Version": V, "Statement": sts}

    # ------------------------------------------------------------------ managed policies

    def managed_entry(self, arn: str, name: str, path: str, docs: list[dict], default: int = 0) -> dict:
        return {
            "PolicyName": name, "PolicyId": self.uid("ANPA"), "Arn": arn, "Path": path,
            "DefaultVersionId": f"v{default + 1}", "AttachmentCount": 0, "PermissionsBoundaryUsageCount": 0,
            "IsAttachable": True, "CreateDate": self.date(), "UpdateDate": self.date(),
            "PolicyVersionList": [{"Document": d, "VersionId": f"v{i + 1}", "IsDefaultVersion": i == default, "CreateDate": self.date()} for i, d in enumerate(docs)],
        }

    def make_policies(self):
        r = self.rng
        rows = [json.loads(line) for line in AWS_MANAGED.read_text(encoding="utf-8").splitlines() if line.strip()]
        by_name = {row["PolicyName"]: row for row in rows}
        n_aws = max(len([n for n in COMMON_AWS if n in by_name]), round(self.n_policies * self.aws_share))
        n_aws = min(n_aws, len(rows), self.n_policies // 2)
        common = [n for n in COMMON_AWS if n in by_name]
        rest = sorted(n for n in by_name if n not in COMMON_AWS)
        chosen = common + r.sample(rest, max(0, n_aws - len(common)))
        self.aws = {by_name[n]["Arn"]: by_name[n] for n in chosen}
        self.aws_by_name = {n: by_name[n]["Arn"] for n in chosen}
        # weights for drawing AWS managed policies to attach to people / workloads
        self.aws_draw = [by_name[n]["Arn"] for n in chosen if COMMON_AWS.get(n, 1) > 0]
        self.aws_weights = [COMMON_AWS.get(n, 0.15) for n in chosen if COMMON_AWS.get(n, 1) > 0]

        n_cust = max(2 * len(self.accounts), self.n_policies - len(self.aws) - self.planted_policies())
        self.cust: dict[str, list[str]] = {a: [] for a in self.accounts}
        self.boundaries: dict[str, list[str]] = {a: [] for a in self.accounts}
        self.cust_entry: dict[str, dict] = {}
        weights = [self.roles_in[a] + 1 for a in self.accounts]
        owners = r.choices(self.accounts, weights=weights, k=n_cust)
        for i, a in enumerate(self.accounts):  # every account has a boundary and a policy at least
            owners[2 * i] = owners[2 * i + 1] = a
        for i, a in enumerate(owners):
            if not self.boundaries[a] or r.random() < 0.03:
                name = f"{r.choice(TEAMS)}-boundary-{i}"
                doc = {"Version": V, "Statement": [
                    {"Sid": "Services", "Effect": "Allow", "Action": [f"{s}:*" for s in self.pick(["s3", "lambda", "logs", "dynamodb", "sqs", "sns", "kms", "ec2", "ecs", "cloudwatch"], r.randint(3, 7))] + ["sts:AssumeRole"], "Resource": "*"},
                    {"Sid": "NoIamWrites", "Effect": "Deny", "Action": ["iam:Create*", "iam:Put*", "iam:Attach*", "iam:Update*", "iam:Delete*"], "Resource": "*"}]}
                arn = f"arn:aws:iam::{a}:policy/boundaries/{name}"
                self.cust_entry[arn] = self.managed_entry(arn, name, "/boundaries/", [doc])
                self.boundaries[a].append(arn)
                continue
            name = f"{r.choice(TEAMS)}-{r.choice(['read', 'write', 'deploy', 'ops', 'data', 'app', 'ci'])}-{i}"
            docs = [self.document(a, r.choice((1, 1, 2, 2, 3, 4)))]
            default = 0
            if r.random() < 0.08:
                docs.append(self.document(a, r.choice((1, 2))))
                default = r.randrange(2)
            arn = f"arn:aws:iam::{a}:policy/{name}"
            self.cust_entry[arn] = self.managed_entry(arn, name, "/", docs, default)
            self.cust[a].append(arn)
        for a in self.accounts:
            if not self.cust[a]:  # an account with no policy of its own gets one
                arn = f"arn:aws:iam::{a}:policy/{self.names[a]}-baseline"
                self.cust_entry[arn] = self.managed_entry(arn, f"{self.names[a]}-baseline", "/", [self.document(a, 2, False)])
                self.cust[a].append(arn)

    def attach(self, a: str, entity: dict, arns: list[str]):
        lst = entity.setdefault("AttachedManagedPolicies", [])
        have = {x["PolicyArn"] for x in lst}
        for arn in arns:
            if arn in have:
                continue
            have.add(arn)
            if arn in self.aws:
                self.aws_used[a].add(arn)
                name = self.aws[arn]["PolicyName"]
            else:
                name = self.cust_entry[arn]["PolicyName"]
                self.cust_entry[arn]["AttachmentCount"] += 1
            lst.append({"PolicyName": name, "PolicyArn": arn})

    def draw_managed(self, a: str, k: int) -> list[str]:
        r = self.rng
        out = []
        for _ in range(k):
            if r.random() < 0.35:
                out.append(r.choices(self.aws_draw, weights=self.aws_weights)[0])
            else:
                out.append(r.choice(self.cust[a]))
        return out

    def inline(self, a: str, k: int) -> list[dict]:
        return [{"PolicyName": f"inline-{self.rng.choice(TEAMS)}-{j}", "PolicyDocument": self.document(a, self.rng.choice((1, 1, 2, 3)))} for j in range(k)]

    def boundary(self, a: str) -> dict:
        arn = self.rng.choice(self.boundaries[a])
        self.cust_entry[arn]["PermissionsBoundaryUsageCount"] += 1
        return {"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": arn}

    # ------------------------------------------------------------------ principals

    def trust(self, statements: list[dict]) -> dict:
        return {"Version": V, "Statement": statements}

    def role_entry(self, a: str, name: str, trust: dict, path: str = "/") -> dict:
        r = self.rng
        return {"Path": path, "RoleName": name, "RoleId": self.uid("AROA"), "Arn": f"arn:aws:iam::{a}:role{path}{name}",
                "CreateDate": self.date(), "AssumeRolePolicyDocument": trust, "InstanceProfileList": [], "RolePolicyList": [],
                "AttachedManagedPolicies": [], "Tags": [{"Key": "team", "Value": r.choice(TEAMS)}, {"Key": "env", "Value": self.ou_of[a]}],
                "RoleLastUsed": {}}

    def make_groups_and_users(self):
        r = self.rng
        ident = self.identity
        self.groups: dict[str, list[str]] = {a: [] for a in self.accounts}
        gacc = [ident] * self.n_groups
        for j in range(1, 1 + self.n_groups // 5):
            gacc[j] = self.accounts[2 + j % (len(self.accounts) - 2)] if len(self.accounts) > 2 else ident
        for j, a in enumerate(gacc):
            kind = ("admins" if j == 0 else r.choice(["developers", "readonly", "data", "oncall", "finance", "ci"]))
            name = f"{kind}-{j}" if j else "admins"
            g = {"Path": "/", "GroupName": name, "GroupId": self.uid("AGPA"), "Arn": f"arn:aws:iam::{a}:group/{name}",
                 "CreateDate": self.date(), "GroupPolicyList": [], "AttachedManagedPolicies": []}
            if j == 0:
                self.attach(a, g, [self.aws_by_name["AdministratorAccess"]])
            else:
                self.attach(a, g, self.draw_managed(a, r.randint(1, 3)))
                # people in the identity account reach the workload accounts through roles
                g["GroupPolicyList"] = [{"PolicyName": "assume-work-roles", "PolicyDocument": {"Version": V, "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": r.choice(["arn:aws:iam::*:role/people-*", f"arn:aws:iam::*:role/people-{r.choice(TEAMS)}-*", "*"]),
                     "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}}}]}}] if r.random() < 0.8 else self.inline(a, 1)
            self.authz[a]["GroupDetailList"].append(g)
            self.groups[a].append(name)
        self.users: dict[str, list[str]] = {a: [] for a in self.accounts}
        others = self.accounts[2:] or [ident]
        for j in range(self.n_users):
            a = ident if r.random() < 0.8 else r.choice(others)
            kind = "ci" if a != ident and r.random() < 0.7 else "person"
            name = f"{kind}-{r.choice(TEAMS)}-{j}"
            u = {"Path": "/", "UserName": name, "UserId": self.uid("AIDA"), "Arn": f"arn:aws:iam::{a}:user/{name}",
                 "CreateDate": self.date(), "UserPolicyList": [], "GroupList": [], "AttachedManagedPolicies": [],
                 "Tags": [{"Key": "team", "Value": r.choice(TEAMS)}]}
            if self.groups[a]:
                gs = self.pick([g for g in self.groups[a] if g != "admins"] or self.groups[a], r.choice((1, 1, 2, 3)))
                if a == ident and j % 97 == 0:
                    gs.append("admins")
                u["GroupList"] = sorted(set(gs))
            if r.random() < 0.3:
                self.attach(a, u, self.draw_managed(a, r.randint(1, 2)))
            if r.random() < 0.25:
                u["UserPolicyList"] = self.inline(a, r.randint(1, 2))
            if r.random() < 0.1:
                u["PermissionsBoundary"] = self.boundary(a)
            self.authz[a]["UserDetailList"].append(u)
            self.users[a].append(u["Arn"])
            self.res[a]["Credentials"].append({"User": u["Arn"], "AccessKeys": r.choice((0, 1, 1, 2)) if kind == "person" else 1,
                                               "LoginProfile": kind == "person" and r.random() < 0.8, "MFADevices": int(kind == "person" and r.random() < 0.7)})

    def make_roles(self):
        r = self.rng
        # how many roles each account holds: the management account a few, identity a tenth;
        # OrganizationAccountAccessRole in members and the planted roles count in --roles
        n = self.n_roles - (len(self.accounts) - 1) - self.planted_roles()
        share = {self.mgmt: 0.01, self.identity: 0.08}
        rest = [a for a in self.accounts if a not in share]
        left = 1 - sum(share.values())
        w = [r.uniform(0.6, 1.4) for _ in rest]
        counts = {a: max(3, int(n * share[a])) for a in share}
        tot = sum(w)
        for a, x in zip(rest, w):
            counts[a] = max(3, int(n * left * x / tot))
        diff = n - sum(counts.values())
        counts[rest[0] if rest else self.identity] += diff
        self.role_counts = counts

        self.tier: list[list[str]] = [[] for _ in range(5)]
        self.lambda_roles: dict[str, list[str]] = {a: [] for a in self.accounts}
        self.ec2_roles: dict[str, list[str]] = {a: [] for a in self.accounts}
        k = 0
        for a in self.accounts:
            roles = self.authz[a]["RoleDetailList"]
            if a != self.mgmt:
                oa = self.role_entry(a, "OrganizationAccountAccessRole", self.trust([{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.mgmt}:root"}, "Action": "sts:AssumeRole"}]))
                self.attach(a, oa, [self.aws_by_name["AdministratorAccess"]])
                roles.append(oa)
            for _ in range(counts[a]):
                k += 1
                roles.append(self.one_role(a, k))

    def one_role(self, a: str, k: int) -> dict:
        r = self.rng
        t = r.random()
        team = r.choice(TEAMS)
        if a == self.identity and t < 0.85:
            t = 0.62  # the identity account holds mostly people's hub roles
        svc = None
        if t < 0.22:
            svc, prefix = "lambda.amazonaws.com", r.choice(["lambda", "svc"])
        elif t < 0.30:
            svc, prefix = "ec2.amazonaws.com", "ec2"
        elif t < 0.35:
            svc, prefix = "ecs-tasks.amazonaws.com", "ecs"
        elif t < 0.38:
            svc, prefix = "codebuild.amazonaws.com", "svc"
        elif t < 0.41:
            svc, prefix = "cloudformation.amazonaws.com", "svc"
        elif t < 0.43:
            svc, prefix = "glue.amazonaws.com", "svc"
        name = None
        if svc:
            name = f"{prefix}-{team}-{k}"
            trust = self.trust([{"Effect": "Allow", "Principal": {"Service": svc}, "Action": "sts:AssumeRole"}])
            role = self.role_entry(a, name, trust, "/service-role/" if r.random() < 0.2 else "/")
            basics = {"lambda.amazonaws.com": ["AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole"],
                      "ec2.amazonaws.com": ["AmazonSSMManagedInstanceCore", "CloudWatchAgentServerPolicy"],
                      "ecs-tasks.amazonaws.com": ["AmazonECSTaskExecutionRolePolicy"]}.get(svc, [])
            att = [self.aws_by_name[b] for b in basics if b in self.aws_by_name and r.random() < 0.8]
            self.attach(a, role, att + self.draw_managed(a, r.choice((0, 1, 1, 2))))
            role["RolePolicyList"] = self.inline(a, r.choice((0, 1, 1, 2)))
            self.workload(a, role, svc)
        elif t < 0.62:
            # people's roles: the identity account's root (with MFA), or hub roles / users by ARN
            name = f"people-{team}-{k}"
            st = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.identity}:root"}, "Action": "sts:AssumeRole"}
            u = r.random()
            if u < 0.55:
                st["Condition"] = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
            elif u < 0.7 and self.users[self.identity]:
                st["Principal"] = {"AWS": self.pick(self.users[self.identity], r.randint(1, 3))}
            elif u < 0.8:
                st["Condition"] = {"IpAddress": {"aws:SourceIp": list(self.pick(OFFICE_CIDRS, 2))}}
            role = self.role_entry(a, name, self.trust([st]))
            self.attach(a, role, self.draw_managed(a, r.choice((1, 1, 2, 3))))
            role["RolePolicyList"] = self.inline(a, r.choice((0, 0, 1, 2)))
            if a == self.identity:
                # hub roles: onward to workload accounts' chain roles
                role["RolePolicyList"].append({"PolicyName": "onward", "PolicyDocument": {"Version": V, "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": r.choice(["arn:aws:iam::*:role/chain-*", f"arn:aws:iam::*:role/chain-{team}-*", "arn:aws:iam::*:role/*"])}]}})
            self.tier[0].append(role["Arn"])
        elif t < 0.87:
            # chain roles: trust one or two roles one tier up, in any account (sometimes with ExternalId)
            lvl = r.choice([x for x in range(1, 5) if self.tier[x - 1]] or [1])
            up = self.tier[lvl - 1] or [f"arn:aws:iam::{self.identity}:root"]
            name = f"chain-{team}-{k}"
            st = {"Effect": "Allow", "Principal": {"AWS": self.pick(up, r.choice((1, 1, 2)))}, "Action": "sts:AssumeRole"}
            if r.random() < 0.15:
                st["Condition"] = {"StringEquals": {"sts:ExternalId": f"ext-{r.getrandbits(32):08x}"}}
            elif r.random() < 0.1:
                st["Principal"] = {"AWS": f"arn:aws:iam::{r.choice(self.accounts)}:root"}
            role = self.role_entry(a, name, self.trust([st]))
            self.attach(a, role, self.draw_managed(a, r.choice((1, 1, 2))))
            role["RolePolicyList"] = self.inline(a, r.choice((0, 1, 1)))
            if lvl < 4 and r.random() < 0.6:
                role["RolePolicyList"].append({"PolicyName": "onward", "PolicyDocument": {"Version": V, "Statement": [
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": r.choice(["arn:aws:iam::*:role/chain-*", f"arn:aws:iam::*:role/chain-{team}-*"])}]}})
            if lvl < 5:
                self.tier[min(lvl, 4)].append(role["Arn"])
        elif t < 0.93:
            name = f"sso-{team}-{k}"
            st = {"Effect": "Allow", "Principal": {"Federated": f"arn:aws:iam::{a}:saml-provider/corp-idp"},
                  "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                  "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}}}
            role = self.role_entry(a, name, self.trust([st]), "/aws-reserved/sso.amazonaws.com/")
            self.attach(a, role, self.draw_managed(a, r.choice((1, 2))))
        elif t < 0.96:
            name = f"vendor-{team}-{k}"
            role = self.role_entry(a, name, self.trust([{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{EXTERNAL_ACCOUNT}:root"}, "Action": "sts:AssumeRole",
                                                        "Condition": {"StringEquals": {"sts:ExternalId": f"{r.getrandbits(64):016x}"}}}]))
            self.attach(a, role, [self.aws_by_name.get("SecurityAudit") or self.aws_draw[0]] + self.draw_managed(a, r.choice((0, 1))))
        else:
            name = f"ops-{team}-{k}"
            role = self.role_entry(a, name, self.trust([{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "sts:AssumeRole"}]))
            adm = r.random()
            if adm < 0.15:
                self.attach(a, role, [self.aws_by_name["AdministratorAccess"]])
            elif adm < 0.3 and "PowerUserAccess" in self.aws_by_name:
                self.attach(a, role, [self.aws_by_name["PowerUserAccess"]])
            else:
                self.attach(a, role, self.draw_managed(a, r.choice((1, 2, 3))))
            role["RolePolicyList"] = self.inline(a, r.choice((0, 1)))
        if r.random() < 0.15 and not role["Arn"].endswith("OrganizationAccountAccessRole"):
            role["PermissionsBoundary"] = self.boundary(a)
        return role

    def workload(self, a: str, role: dict, svc: str):
        r = self.rng
        name = role["RoleName"]
        if svc == "lambda.amazonaws.com":
            self.lambda_roles[a].append(role["Arn"])
            for j in range(r.choice((0, 1, 1, 1, 2))):
                self.res[a]["Workloads"].append({"Arn": f"arn:aws:lambda:us-east-1:{a}:function:{name}-fn{j}", "Role": role["Arn"]})
        elif svc == "ec2.amazonaws.com":
            self.ec2_roles[a].append(role["Arn"])
            ip = f"arn:aws:iam::{a}:instance-profile/{name}"
            role["InstanceProfileList"] = [{"Path": "/", "InstanceProfileName": name, "InstanceProfileId": self.uid("AIPA"), "Arn": ip,
                                            "CreateDate": self.date(), "Roles": [{"RoleName": name, "Arn": role["Arn"], "Path": "/"}]}]
            for _ in range(r.choice((0, 1, 1, 2))):
                self.res[a]["Workloads"].append({"Arn": f"arn:aws:ec2:us-east-1:{a}:instance/i-{r.getrandbits(68):017x}", "InstanceProfile": ip})
        elif svc == "cloudformation.amazonaws.com" and r.random() < 0.7:
            self.res[a]["Workloads"].append({"Arn": f"arn:aws:cloudformation:us-east-1:{a}:stack/{name}-stack/{r.getrandbits(64):016x}", "Role": role["Arn"]})
        elif svc == "codebuild.amazonaws.com" and r.random() < 0.7:
            self.res[a]["Workloads"].append({"Arn": f"arn:aws:codebuild:us-east-1:{a}:project/{name}-build", "Role": role["Arn"]})

    # ------------------------------------------------------------------ planted escalation paths

    METHODS = ("lambda_create_invoke", "iam_create_policy_version", "ec2_run_instances")

    def planted_roles(self) -> int:
        return sum(1 if self.METHODS[i % 3] == "iam_create_policy_version" else 2 for i in range(self.n_planted))

    def planted_policies(self) -> int:
        return sum(self.METHODS[i % 3] == "iam_create_policy_version" for i in range(self.n_planted))

    def use_every_aws_policy(self):
        """Each AWS managed policy chosen is attached somewhere (a service role for the service-role
        ones, a people or ops role otherwise), so --policies is the distinct count loaded."""
        used = set().union(*self.aws_used.values())
        roles = [(a, e) for a in self.accounts[1:] for e in self.authz[a]["RoleDetailList"] if not e["RoleName"].startswith(("planted-", "lambda-admin-", "ec2-admin-", "OrganizationAccountAccessRole"))]
        svc = [(a, e) for a, e in roles if e["RoleName"].startswith(("lambda-", "svc-", "ec2-", "ecs-"))] or roles
        ppl = [(a, e) for a, e in roles if e["RoleName"].startswith(("people-", "ops-", "chain-", "sso-"))] or roles
        for arn in self.aws:
            if arn not in used:
                a, e = self.rng.choice(svc if "/service-role/" in arn or "ServiceRole" in arn else ppl)
                self.attach(a, e, [arn])

    def plant(self):
        r = self.rng
        work = self.accounts[2:] or [self.identity]
        for i in range(self.n_planted):
            a = work[i % len(work)]
            m = self.METHODS[i % 3]
            roles = self.authz[a]["RoleDetailList"]
            actor = self.role_entry(a, f"planted-{m.replace('_', '-')}-{i}", self.trust([{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{self.identity}:root"}, "Action": "sts:AssumeRole"}]))
            self.attach(a, actor, self.draw_managed(a, 1))
            if m == "lambda_create_invoke":
                target = self.role_entry(a, f"lambda-admin-{i}", self.trust([{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]))
                self.attach(a, target, [self.aws_by_name["AdministratorAccess"]])
                roles.append(target)
                doc = [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": target["Arn"]},
                       {"Effect": "Allow", "Action": ["lambda:CreateFunction", "lambda:InvokeFunction"], "Resource": "*"}]
                via = target["Arn"]
            elif m == "ec2_run_instances":
                target = self.role_entry(a, f"ec2-admin-{i}", self.trust([{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]))
                self.attach(a, target, [self.aws_by_name["AdministratorAccess"]])
                ip = f"arn:aws:iam::{a}:instance-profile/ec2-admin-{i}"
                target["InstanceProfileList"] = [{"Path": "/", "InstanceProfileName": f"ec2-admin-{i}", "InstanceProfileId": self.uid("AIPA"), "Arn": ip,
                                                  "CreateDate": self.date(), "Roles": [{"RoleName": target["RoleName"], "Arn": target["Arn"], "Path": "/"}]}]
                roles.append(target)
                doc = [{"Effect": "Allow", "Action": "iam:PassRole", "Resource": target["Arn"]},
                       {"Effect": "Allow", "Action": ["ec2:RunInstances", "ec2:AssociateIamInstanceProfile"], "Resource": "*"}]
                via = target["Arn"]
            else:
                name = f"planted-self-managed-{i}"
                parn = f"arn:aws:iam::{a}:policy/{name}"
                self.cust_entry[parn] = self.managed_entry(parn, name, "/", [self.document(a, 1, False)])
                self.cust[a].append(parn)
                self.attach(a, actor, [parn])
                doc = [{"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": parn}]
                via = parn
            actor["RolePolicyList"].append({"PolicyName": "planted", "PolicyDocument": {"Version": V, "Statement": doc}})
            roles.append(actor)
            self.planted.append({"principal": actor["Arn"], "method": m, "via": via})

    # ------------------------------------------------------------------ resource policies

    def make_resource_policies(self):
        r = self.rng
        org_id = f"o-{self.seed:010x}"[-12:]
        for a in self.accounts:
            rp = self.res[a]["ResourcePolicies"]
            roles = [x["Arn"] for x in self.authz[a]["RoleDetailList"]]
            foreign = [x for b in self.accounts if b != a for x in self.tier[0] + self.tier[1] if f"::{b}:" in x]
            for b in self.buckets[a]:
                if r.random() >= 0.6:
                    continue
                arn = f"arn:aws:s3:::{b}"
                sts = [{"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [arn, f"{arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
                u = r.random()
                if u < 0.4 and foreign:
                    sts.append({"Sid": "CrossAccountRead", "Effect": "Allow", "Principal": {"AWS": self.pick(foreign, r.randint(1, 3))},
                                "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [arn, f"{arn}/*"]})
                elif u < 0.7:
                    sts.append({"Sid": "OrgRead", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"{arn}/*",
                                "Condition": {"StringEquals": {"aws:PrincipalOrgID": org_id}}})
                else:
                    sts.append({"Sid": "AppWrite", "Effect": "Allow", "Principal": {"AWS": self.pick(roles, r.randint(1, 2))},
                                "Action": ["s3:PutObject", "s3:GetObject"], "Resource": f"{arn}/*"})
                rp.append({"Arn": arn, "Policy": {"Version": V, "Statement": sts}})
            for k in self.keys[a]:
                doc = {"Version": V, "Statement": [
                    {"Sid": "EnableIAMUserPermissions", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"}, "Action": "kms:*", "Resource": "*"},
                    {"Sid": "AllowUse", "Effect": "Allow", "Principal": {"AWS": self.pick(roles, r.randint(1, 4))}, "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*"}]}
                rp.append({"Arn": k, "Policy": json.dumps(doc, indent=2) if r.random() < 0.5 else doc})
            for q in self.queues[a]:
                if r.random() < 0.5:
                    rp.append({"Arn": q, "Policy": {"Version": V, "Statement": [
                        {"Effect": "Allow", "Principal": {"Service": "sns.amazonaws.com"}, "Action": "sqs:SendMessage", "Resource": q,
                         "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{a}:*"}}}]}})

    # ------------------------------------------------------------------ assemble

    def build(self) -> tuple[dict, dict, dict, dict]:
        self.make_accounts()
        # roles per account are decided first: resources and policies scale with them
        n = self.n_roles
        self.roles_in = {a: max(3, n // len(self.accounts)) for a in self.accounts}
        self.make_resources()
        self.make_policies()
        self.make_groups_and_users()
        self.make_roles()
        self.plant()
        self.use_every_aws_policy()
        self.make_resource_policies()
        for a in self.accounts:
            pols = self.authz[a]["Policies"]
            for arn in self.cust[a] + self.boundaries[a]:
                pols.append(self.cust_entry[arn])
            for arn in sorted(self.aws_used[a]):
                row = self.aws[arn]
                e = self.managed_entry(arn, row["PolicyName"], arn.split(":policy")[1].rsplit("/", 1)[0] + "/", [row["Document"]])
                e["PolicyVersionList"][0]["VersionId"] = row["DefaultVersionId"]
                e["DefaultVersionId"] = row["DefaultVersionId"]
                pols.append(e)
        return self.organization(), self.authz, self.res, self.manifest()

    def manifest(self) -> dict:
        acc = {}
        for a in self.accounts:
            d, res = self.authz[a], self.res[a]
            acc[a] = {
                "name": self.names[a],
                "users": len(d["UserDetailList"]), "groups": len(d["GroupDetailList"]), "roles": len(d["RoleDetailList"]),
                "policies": len(d["Policies"]),
                "inline_policies": sum(len(e.get(k, [])) for k, lst in (("UserPolicyList", d["UserDetailList"]), ("GroupPolicyList", d["GroupDetailList"]), ("RolePolicyList", d["RoleDetailList"])) for e in lst),
                "resource_policies": len(res["ResourcePolicies"]), "workloads": len(res["Workloads"]), "credentials": len(res["Credentials"]),
            }
        distinct = {p["Arn"] for d in self.authz.values() for p in d["Policies"]}
        return {
            "generator": "benchmarks/synth.py", "format": "snapshot v1",
            "args": {"roles": self.n_roles, "policies": self.n_policies, "seed": self.seed, "users": self.n_users, "groups": self.n_groups,
                     "accounts": self.n_accounts, "aws_share": self.aws_share, "planted": self.n_planted},
            "totals": {"accounts": len(self.accounts), **{k: sum(v[k] for v in acc.values()) for k in next(iter(acc.values())) if k != "name"},
                       "distinct_managed_policies": len(distinct), "aws_managed_policies": len({x for x in distinct if ":aws:policy/" in x})},
            "accounts": acc,
            "planted": self.planted,
            "questions": self.questions(),
        }

    def questions(self) -> dict:
        """Representative targets for who-can: a bucket read across accounts, a role at the end of
        a chain, a Lambda service role to pass."""
        work = self.accounts[2:] or self.accounts
        bucket = next((e["Arn"] for a in work for e in self.res[a]["ResourcePolicies"]
                       if ":s3:::" in e["Arn"] and any(st.get("Sid") == "CrossAccountRead" for st in e["Policy"]["Statement"])),
                      f"arn:aws:s3:::{self.buckets[work[0]][0]}")
        deepest = next(t for t in (self.tier[3], self.tier[2], self.tier[1], self.tier[0]) if t)
        lam = next((x for a in work for x in self.lambda_roles[a]), None)
        return {"bucket_object": bucket + "/*", "chained_role": deepest[0], "passrole_target": lam}


# ---------------------------------------------------------------------- one-account variant

def single_account(org: dict, authz: dict, res: dict, manifest: dict) -> tuple[str, dict, dict, dict]:
    """The same estate as one account: every account id of the organization rewritten to the
    identity account's, entities listed once (the per-account OrganizationAccountAccessRole and the
    AWS managed policies recur), no organization data."""
    accounts = list(authz)
    target = accounts[1] if len(accounts) > 1 else accounts[0]
    pat = re.compile("|".join(re.escape(a) for a in accounts))
    both = {"authz": {a: json.loads(pat.sub(target, json.dumps(authz[a]))) for a in accounts},
            "res": {a: json.loads(pat.sub(target, json.dumps(res[a]))) for a in accounts}}
    one = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    seen: dict[str, set] = {k: set() for k in one}
    for a in accounts:
        for k in one:
            for e in both["authz"][a][k]:
                if e["Arn"] not in seen[k]:
                    seen[k].add(e["Arn"])
                    one[k].append(e)
    r1 = {"ResourcePolicies": [], "Workloads": [], "Credentials": []}
    seen_rp = set()
    for a in accounts:
        for e in both["res"][a]["ResourcePolicies"]:
            if e["Arn"] not in seen_rp:
                seen_rp.add(e["Arn"])
                r1["ResourcePolicies"].append(e)
        r1["Workloads"] += both["res"][a]["Workloads"]
        r1["Credentials"] += both["res"][a]["Credentials"]
    m = json.loads(pat.sub(target, json.dumps(manifest)))
    m["single_account"] = target
    m["accounts"] = {target: {
        "name": "single", "users": len(one["UserDetailList"]), "groups": len(one["GroupDetailList"]), "roles": len(one["RoleDetailList"]),
        "policies": len(one["Policies"]),
        "inline_policies": sum(len(e.get(k, [])) for k, lst in (("UserPolicyList", one["UserDetailList"]), ("GroupPolicyList", one["GroupDetailList"]), ("RolePolicyList", one["RoleDetailList"])) for e in lst),
        "resource_policies": len(r1["ResourcePolicies"]), "workloads": len(r1["Workloads"]), "credentials": len(r1["Credentials"])}}
    m["totals"] = {"accounts": 1, **{k: v for k, v in m["accounts"][target].items() if k != "name"},
                   "distinct_managed_policies": len(one["Policies"]), "aws_managed_policies": sum(":aws:policy/" in p["Arn"] for p in one["Policies"])}
    return target, one, r1, m


# ---------------------------------------------------------------------- writing

def write(out: Path, org: dict | None, authz: dict, res: dict, manifest: dict) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "accounts").mkdir(parents=True)
    if org is not None:
        (out / "organization.json").write_text(json.dumps(org, indent=4) + "\n")
    for a in authz:
        d = out / "accounts" / a
        d.mkdir()
        (d / "authorization-details.json").write_text(json.dumps(authz[a], indent=4) + "\n")
        (d / "resources.json").write_text(json.dumps(res[a], indent=4) + "\n")
    (out / "synth-manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def generate(out: str | Path, roles: int, policies: int, seed: int, single: bool = False, **kw) -> dict:
    """Write a synthetic estate (or its one-account variant) to ``out``; return its manifest."""
    org, authz, res, manifest = Synth(roles, policies, seed, **kw).build()
    if single:
        target, one, r1, manifest = single_account(org, authz, res, manifest)
        write(Path(out), None, {target: one}, {target: r1}, manifest)
    else:
        write(Path(out), org, authz, res, manifest)
    return manifest


# ---------------------------------------------------------------------- for the benchmarks

CACHE = Path(os.environ.get("IAM_BENCH_CACHE", Path(tempfile.gettempdir()) / "iam-reasoner-bench"))


def estate_dir(roles: int, policies: int, seed: int, single: bool = False) -> Path:
    """The estate of these arguments, generated once (same arguments, same bytes) and reused."""
    d = CACHE / f"r{roles}-p{policies}-s{seed}{'-single' if single else ''}"
    m = d / "synth-manifest.json"
    gen = Path(__file__).stat().st_mtime
    if not m.is_file() or m.stat().st_mtime < gen:
        generate(d, roles, policies, seed, single)
    return d


def manifest(d: Path) -> dict:
    return json.loads((d / "synth-manifest.json").read_text())


def source_state() -> str:
    """The commit of the code measured, and whether reasoner/ or encodings/ differ from it."""
    import reasoner

    src = Path(reasoner.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "reasoner", "encodings", "grammar"], capture_output=True, text=True).stdout.split("\n")
        dirty = [x[3:] for x in dirty if x.strip()]
    except OSError:
        return f"{src} (not a git checkout)"
    return f"{src} at {head or '?'}" + (f", with uncommitted changes to {', '.join(dirty)}" if dirty else ", clean")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--roles", type=int, default=5000)
    ap.add_argument("--policies", type=int, default=1500, help="distinct managed policies (customer + AWS managed)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--users", type=int, default=None, help="default: roles / 10")
    ap.add_argument("--groups", type=int, default=None, help="default: users / 25")
    ap.add_argument("--accounts", type=int, default=None, help="default: roles / 500, between 4 and 60")
    ap.add_argument("--aws-share", type=float, default=0.2, help="share of --policies that are real AWS managed policies")
    ap.add_argument("--planted", type=int, default=None, help="planted escalation paths (default: roles / 250, at least 3)")
    ap.add_argument("--single-account", action="store_true", help="write the one-account variant")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args(argv)
    m = generate(a.out, a.roles, a.policies, a.seed, a.single_account, users=a.users, groups=a.groups, accounts=a.accounts,
                 aws_share=a.aws_share, planted=a.planted)
    t = m["totals"]
    print(f"{a.out}: {t['accounts']} account(s), {t['roles']} roles, {t['users']} users, {t['groups']} groups, "
          f"{t['distinct_managed_policies']} managed policies ({t['aws_managed_policies']} AWS managed), {t['inline_policies']} inline, "
          f"{t['resource_policies']} resource policies, {t['workloads']} workloads, {len(m['planted'])} planted paths", file=sys.stderr)


if __name__ == "__main__":
    main()
