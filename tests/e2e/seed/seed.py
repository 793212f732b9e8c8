"""Seed a realistic AWS Organization into the emulators, and write a manifest of what was made.

Organizations is always moto. IAM and STS are LocalStack (mode "localstack") or moto (mode "moto").

Neither emulator refuses AssumeRole for a role that does not exist, so the account seeded without a bootstrap role
is still reachable here; crossrole's handling of it is proven against the in-memory AWS, which enforces it. (moto's
IAM authorization mode would enforce permissions, but it answered the AWS SDK for Rust's CreateRole with HTTP 403
where boto3's identical call passed - most likely its SigV4 check, which re-signs re-encoded form fields - so it
is not used.)

Management account 123456789012. OU tree (three levels below the root):

    Root
    ├── Security                  security (the trusted account: users alice and bob, group auditors)
    ├── Workloads
    │   ├── Prod                  prod-NN (tagged environment=prod), prod-nobootstrap (no bootstrap role)
    │   │   └── Payments          payments-NN (environment=prod, pci=true)
    │   └── Dev                   dev-NN (environment=dev), dev-closed (closed: SUSPENDED)
    ├── Sandbox                   sandbox-NN (environment=sandbox)
    ├── Fleet                     fleet-NN (environment=fleet): with Workloads and Sandbox, 60 accounts for the
    │                             replicas scenario
    └── Quarantine                (empty: accounts are moved here by the retarget tests)

Roles made by hand, as people make them before crossrole (the inventory and adoption scenario, and the demo):
dev-00..dev-02 get one role of each trust shape (a vendor outside the organization with and without an ExternalId,
`*` with and without aws:PrincipalOrgID, a principal since deleted, MFA, a service), and the accounts named by
--adopt-accounts a role named --adopt-role trusting the security account (no ExternalId), each a little different.
The manifest's `hand_made` lists them with what an inventory must say about each.
"""

import argparse
import base64
import hashlib
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

MANAGEMENT = "123456789012"
BOOTSTRAP_TRUST = json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MANAGEMENT}:root"}, "Action": "sts:AssumeRole"}],
})
CFG = Config(retries={"max_attempts": 10, "mode": "standard"})


def client(service, endpoint, key=MANAGEMENT, secret="test", token=None):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token, config=CFG)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--mode", choices=["localstack", "moto"], required=True)
    p.add_argument("--organizations", required=True)
    p.add_argument("--iam", required=True)
    p.add_argument("--sts", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--prod", type=int, default=12)
    p.add_argument("--payments", type=int, default=8)
    p.add_argument("--dev", type=int, default=12)
    p.add_argument("--sandbox", type=int, default=8)
    p.add_argument("--fleet", type=int, default=20)
    p.add_argument("--adopt-role", default="LegacyAudit", help="the name of the hand-made roles to adopt")
    p.add_argument("--adopt-accounts", default="dev-03,dev-04,dev-05",
                   help="the accounts (by name) that get a hand-made --adopt-role")
    p.add_argument("--bootstrap-template", help="deploy this CloudFormation template to the Sandbox and security accounts")
    args = p.parse_args()

    org = client("organizations", args.organizations)
    organization = org.create_organization(FeatureSet="ALL")["Organization"]
    root = org.list_roots()["Roots"][0]["Id"]

    def ou(parent, name):
        return org.create_organizational_unit(ParentId=parent, Name=name)["OrganizationalUnit"]["Id"]

    ous = {"/Root": root}
    ous["/Root/Security"] = ou(root, "Security")
    ous["/Root/Workloads"] = ou(root, "Workloads")
    ous["/Root/Workloads/Prod"] = ou(ous["/Root/Workloads"], "Prod")
    ous["/Root/Workloads/Prod/Payments"] = ou(ous["/Root/Workloads/Prod"], "Payments")
    ous["/Root/Workloads/Dev"] = ou(ous["/Root/Workloads"], "Dev")
    ous["/Root/Sandbox"] = ou(root, "Sandbox")
    ous["/Root/Fleet"] = ou(root, "Fleet")
    ous["/Root/Quarantine"] = ou(root, "Quarantine")

    accounts = []

    def account(name, path, tags):
        status = org.create_account(AccountName=name, Email=f"{name}@example.com",
                                    Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["CreateAccountStatus"]
        account_id = status["AccountId"]
        org.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=ous[path])
        accounts.append({"id": account_id, "name": name, "ou_path": path, "tags": tags, "state": "ACTIVE",
                         "bootstrap": True})
        return account_id

    security = account("security", "/Root/Security", {"team": "security"})
    for i in range(args.prod):
        account(f"prod-{i:02}", "/Root/Workloads/Prod", {"environment": "prod", "team": "platform"})
    no_bootstrap = account("prod-nobootstrap", "/Root/Workloads/Prod", {"environment": "prod", "team": "acquired"})
    for i in range(args.payments):
        account(f"payments-{i:02}", "/Root/Workloads/Prod/Payments", {"environment": "prod", "team": "payments", "pci": "true"})
    for i in range(args.dev):
        account(f"dev-{i:02}", "/Root/Workloads/Dev", {"environment": "dev", "team": "platform"})
    closed = account("dev-closed", "/Root/Workloads/Dev", {"environment": "dev"})
    for i in range(args.sandbox):
        account(f"sandbox-{i:02}", "/Root/Sandbox", {"environment": "sandbox"})
    for i in range(args.fleet):
        account(f"fleet-{i:02}", "/Root/Fleet", {"environment": "fleet"})
    org.close_account(AccountId=closed)
    for a in accounts:
        if a["id"] == closed:
            a["state"] = "SUSPENDED"
        if a["id"] == no_bootstrap:
            a["bootstrap"] = False

    credentials = {"access_key_id": MANAGEMENT, "secret_access_key": "test"}
    if args.mode == "localstack":
        # A 12-digit access key id acts in that account.
        for a in accounts:
            if a["bootstrap"] and a["state"] == "ACTIVE":
                client("iam", args.iam, key=a["id"]).create_role(
                    RoleName="OrganizationAccountAccessRole", AssumeRolePolicyDocument=BOOTSTRAP_TRUST)
        iam_security = client("iam", args.iam, key=security)
    else:
        # moto made OrganizationAccountAccessRole in every new account; remove it where there must be none.
        sts = client("sts", args.sts)

        def iam_in(account_id):
            c = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                                RoleSessionName="seed")["Credentials"]
            return client("iam", args.iam, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])

        iam_in(no_bootstrap).delete_role(RoleName="OrganizationAccountAccessRole")
        iam_security = iam_in(security)

    # The grantees the operator designated (deploy/aws/crossrole-bootstrap.yaml attaches grant policies only to
    # users tagged crossrole:grantee=true and groups under /crossrole-grantees/): alice and auditors; bob is not.
    iam_security.create_user(UserName="alice", Tags=[{"Key": "crossrole:grantee", "Value": "true"}])
    iam_security.create_user(UserName="bob")
    iam_security.create_group(GroupName="auditors", Path="/crossrole-grantees/")
    iam_security.add_user_to_group(GroupName="auditors", UserName="alice")

    def iam_of(account_id):
        return client("iam", args.iam, key=account_id) if args.mode == "localstack" else iam_in(account_id)

    ids = {a["name"]: a["id"] for a in accounts}
    hand_made, deleted_rewritten = seed_hand_made(iam_of, iam_security, security, organization["Id"], ids,
                                                  args.adopt_role, [a for a in args.adopt_accounts.split(",") if a])

    least_privilege = None
    if args.bootstrap_template:
        # deploy/aws/crossrole-bootstrap.yaml through CloudFormation, as the StackSet would.
        template = open(args.bootstrap_template).read()
        crossroled_arn = f"arn:aws:iam::{MANAGEMENT}:role/crossroled"
        targets = [a["id"] for a in accounts if a["ou_path"] == "/Root/Sandbox"] + [security]

        def deploy(account_id):
            if args.mode == "localstack":
                cfn = client("cloudformation", args.iam, key=account_id)
            else:
                c = client("sts", args.sts).assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/OrganizationAccountAccessRole",
                                                        RoleSessionName="seed")["Credentials"]
                cfn = client("cloudformation", args.iam, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
            # The ceiling on: the default ceiling policy, two allowed managed policies, and the trusted side managed
            # in the security account only (a StackSet's per-account parameter override).
            parameters = [
                {"ParameterKey": "CrossroledRoleArn", "ParameterValue": crossroled_arn},
                {"ParameterKey": "AllowedManagedPolicyArns",
                 "ParameterValue": "arn:aws:iam::aws:policy/SecurityAudit,arn:aws:iam::aws:policy/ReadOnlyAccess"},
                {"ParameterKey": "ManageTrustedSide", "ParameterValue": "true" if account_id == security else "false"},
            ]
            if args.mode == "moto":
                parameters += list_defaults_spelled_out(template, parameters)
            cfn.create_stack(StackName="crossrole-bootstrap", TemplateBody=template, Capabilities=["CAPABILITY_NAMED_IAM"],
                             Parameters=parameters)
            waiter = cfn.get_waiter("stack_create_complete")
            waiter.config.delay = 1
            waiter.config.max_attempts = 120
            waiter.wait(StackName="crossrole-bootstrap")
            if args.mode == "moto":
                inline_policies_as_cloudformation_writes_them(cfn, iam_in(account_id))
            outputs = cfn.describe_stacks(StackName="crossrole-bootstrap")["Stacks"][0].get("Outputs", [])
            ceiling = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "CeilingPolicyArn")
            if ":policy/crossrole-ceiling/" not in ceiling:
                # LocalStack 4.13.1's AWS::IAM::ManagedPolicy ignores Path and makes the ceiling at /; AWS keeps
                # the template's /crossrole-ceiling/, which the bootstrap role's policy names. Make it where AWS
                # would, with the same document, so that the deployed policy and the boundary agree.
                iam = (client("iam", args.iam, key=account_id) if args.mode == "localstack" else iam_in(account_id))
                document = iam.get_policy_version(
                    PolicyArn=ceiling,
                    VersionId=iam.get_policy(PolicyArn=ceiling)["Policy"]["DefaultVersionId"])["PolicyVersion"]["Document"]
                if not isinstance(document, str):
                    document = json.dumps(document)
                ceiling = iam.create_policy(PolicyName=ceiling.rsplit("/", 1)[1], Path="/crossrole-ceiling/",
                                            PolicyDocument=document)["Policy"]["Arn"]
            return account_id, ceiling

        with ThreadPoolExecutor(len(targets)) as pool:
            deployed = list(pool.map(deploy, targets))
        ceiling_arn = deployed[0][1]
        least_privilege = {"role": "CrossroleBootstrap", "path": "/crossrole/", "accounts": [a for a, _ in deployed],
                           "crossroled_role_arn": crossroled_arn,
                           "ceiling_policy": "/" + ceiling_arn.split(":policy/", 1)[1]}

    manifest = {
        "mode": args.mode,
        "endpoints": {"organizations": args.organizations, "iam": args.iam, "sts": args.sts},
        "credentials": credentials,
        "organization_id": organization["Id"],
        "management_account": MANAGEMENT,
        "security_account": security,
        "no_bootstrap_account": no_bootstrap,
        "closed_account": closed,
        "ous": ous,
        "accounts": accounts,
        "least_privilege_bootstrap": least_privilege,
        "hand_made": hand_made,
        "emulator_rewrites_deleted_principals": deleted_rewritten,
    }
    with open(args.out, "w") as f:
        json.dump(manifest, f, indent=2)
    print(f"seeded organization {organization['Id']}: {len(accounts)} accounts, {len(ous)} units -> {args.out}",
          file=sys.stderr)


def list_defaults_spelled_out(template, parameters):
    """The template's list parameters left at their defaults (CeilingDeniedActions), passed with those same
    defaults. CloudFormation splits a CommaDelimitedList's Default at its commas as it splits a value passed in;
    moto 5.2.5 splits only a value passed in, so `!Ref CeilingDeniedActions` there is one string, and the ceiling
    policy's one action "iam:Accept*,iam:Add*,..." is refused: CreateStack fails with "An error occurred
    (MalformedPolicyDocument) when calling the CreateStack operation: Actions/Condition can contain only one
    colon." Spelled out, moto makes the same policy CloudFormation makes from the default; LocalStack reads the
    default as CloudFormation does, so there the template is deployed as it is."""
    import yaml

    class CloudFormation(yaml.SafeLoader):
        pass

    # The intrinsic functions (!Ref, !Sub, ...) do not matter here: read them as plain values.
    CloudFormation.add_multi_constructor("!", lambda loader, suffix, node: None)
    given = {p["ParameterKey"] for p in parameters}
    out = []
    for name, slot in yaml.load(template, Loader=CloudFormation).get("Parameters", {}).items():
        default = slot.get("Default")
        if name not in given and slot.get("Type") == "CommaDelimitedList" and default and "," in default:
            out.append({"ParameterKey": name, "ParameterValue": default})
    return out


def inline_policies_as_cloudformation_writes_them(cfn, iam):
    """The inline policies of the roles the stack made, written again as CloudFormation leaves them. moto 5.2.5's
    AWS::IAM::Role keeps a `Policies` document as the template's object, not as JSON text: GetRolePolicy answers
    its Python repr ("{'Version': '2012-10-17', ...}", which no client reads as JSON), GetAccountAuthorizationDetails
    fails with HTTP 500 ("TypeError: quote_from_bytes() expected bytes" in moto's role_policy_list), and a
    statement `!If [TrustedSide, {...}, !Ref AWS::NoValue]` left out is kept as a null, where CloudFormation drops
    it. Read back, the nulls dropped, put again through PutRolePolicy: the same document CloudFormation would have
    written."""
    import ast

    resources = cfn.list_stack_resources(StackName="crossrole-bootstrap")["StackResourceSummaries"]
    for role in (r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::IAM::Role"):
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            if isinstance(document, str):
                try:
                    document = json.loads(document)
                except ValueError:
                    document = ast.literal_eval(document)
            statements = document["Statement"]
            if isinstance(statements, list):
                document["Statement"] = [s for s in statements if s is not None]
            iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


# An account outside the organization: a vendor's.
VENDOR = "999988887777"


def trust(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal, condition=None, action="sts:AssumeRole"):
    s = {"Effect": "Allow", "Principal": principal, "Action": action}
    if condition:
        s["Condition"] = condition
    return s


def seed_hand_made(iam_of, iam_security, security, organization_id, ids, adopt_role, adopt_accounts):
    """Roles made by hand, one of each trust shape, and the roles of --adopt-role's name; what an inventory must
    say about each (entrant kinds, guards, finding kinds), and whether the emulator rewrote a deleted principal to
    its unique id as IAM does."""
    made = []
    needed = ["dev-00", "dev-01", "dev-02"] + adopt_accounts
    if any(name not in ids for name in needed):
        # A smaller organization (the benchmarks'): no hand-made roles.
        print(f"no hand-made roles: the organization has not all of {', '.join(needed)}", file=sys.stderr)
        return made, False

    def role(account_name, name, document, expect, path="/", description="", inline=None):
        account_id = ids[account_name]
        iam = iam_of(account_id)
        iam.create_role(RoleName=name, Path=path, AssumeRolePolicyDocument=document, Description=description)
        for policy, body in (inline or {}).items():
            iam.put_role_policy(RoleName=name, PolicyName=policy, PolicyDocument=json.dumps(body))
        made.append({"account_id": account_id, "account_name": account_name, "name": name, "path": path,
                     "trust_policy": document, **expect})

    security_root = f"arn:aws:iam::{security}:root"
    vendor_root = f"arn:aws:iam::{VENDOR}:root"
    # A vendor's account trusted as the console's "Another AWS account" makes it: without an ExternalId (the
    # confused deputy), and with one.
    role("dev-00", "VendorMonitoring", trust(allow({"AWS": vendor_root})),
         {"entrants": [["outside_account", VENDOR, []]],
          "findings": ["outside_without_external_id", "outside_account_root"], "most_severe": "high"})
    role("dev-00", "VendorBackup",
         trust(allow({"AWS": vendor_root}, {"StringEquals": {"sts:ExternalId": "vendor-backup-7f3a"}})),
         {"entrants": [["outside_account", VENDOR, ["external_id"]]],
          "findings": ["outside_account_root"], "most_severe": "low"})
    # Anyone, and anyone held to the organization.
    role("dev-01", "PublicReader", trust(allow({"AWS": "*"})),
         {"entrants": [["anyone", None, []]], "findings": ["anyone_can_enter"], "most_severe": "critical"})
    role("dev-01", "OrganizationReader",
         trust(allow({"AWS": "*"}, {"StringEquals": {"aws:PrincipalOrgID": organization_id}})),
         {"entrants": [["anyone", None, ["organization"]]], "findings": ["anyone_can_enter"], "most_severe": "low"})
    # The security account, with MFA.
    role("dev-01", "BreakGlass", trust(allow({"AWS": security_root}, {"Bool": {"aws:MultiFactorAuthPresent": "true"}})),
         {"entrants": [["organization_account", security, ["mfa"]]], "findings": [], "most_severe": None})
    # A service.
    role("dev-02", "InstanceProfileRole", trust(allow({"Service": "ec2.amazonaws.com"})),
         {"entrants": [["service", None, []]], "findings": [], "most_severe": None})
    # A principal since deleted: IAM rewrites it in every trust policy to its unique id (AIDA… for a user).
    departed = iam_security.create_user(UserName="departed-contractor")["User"]
    departed_arn, departed_id = departed["Arn"], departed["UserId"]
    dev02 = iam_of(ids["dev-02"])
    dev02.create_role(RoleName="ContractorAccess", AssumeRolePolicyDocument=trust(allow({"AWS": departed_arn})))
    iam_security.delete_user(UserName="departed-contractor")
    left = dev02.get_role(RoleName="ContractorAccess")["Role"]["AssumeRolePolicyDocument"]
    left = json.dumps(left) if not isinstance(left, str) else left
    rewritten = departed_arn not in left
    if not rewritten:
        # The emulator kept the ARN of a principal that no longer exists; IAM would have left its unique id, so
        # write what IAM leaves. IAM's user ids are AIDA and 17 letters and digits; moto's are not (made from the
        # emulator's id when it has another form).
        if not re.fullmatch(r"AIDA[A-Z0-9]{17}", departed_id):
            departed_id = "AIDA" + base64.b32encode(hashlib.sha256(departed_id.encode()).digest()).decode()[:17]
        dev02.update_assume_role_policy(RoleName="ContractorAccess", PolicyDocument=trust(allow({"AWS": departed_id})))
        left = trust(allow({"AWS": departed_id}))
    made.append({"account_id": ids["dev-02"], "account_name": "dev-02", "name": "ContractorAccess", "path": "/",
                 "trust_policy": left, "entrants": [["unresolvable_id", None, []]],
                 "findings": ["broken_principal"], "most_severe": "medium", "deleted_principal": departed_id})
    # An account closed since (Organizations lists it SUSPENDED for some 90 days): a trust naming it is a former
    # member's, not an outsider's.
    closed = ids.get("dev-closed")
    if closed:
        role("dev-02", "ClosedAccountAccess", trust(allow({"AWS": f"arn:aws:iam::{closed}:root"})),
             {"entrants": [["former_member", closed, []]], "findings": ["former_member"], "most_severe": "high"})
    # The roles to adopt: each copied by hand from a runbook, a little differently each time.
    for i, account_name in enumerate(adopt_accounts):
        inline = {"read-config": {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["config:Get*", "config:Describe*"], "Resource": "*"}]}} if i % 2 else None
        role(account_name, adopt_role, trust(allow({"AWS": security_root})),
             {"entrants": [["organization_account", security, []]], "findings": [], "most_severe": None,
              "adopt": True},
             path="/crossrole/", description=f"audit access, made by hand (copy {i + 1})", inline=inline)
    return made, rewritten


if __name__ == "__main__":
    main()
