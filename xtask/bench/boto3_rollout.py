"""What people do today: a boto3 script that sets up cross-account roles account by account.

    python boto3_rollout.py <accounts file> <role name> <threads> [--cleanup]

Per account: assume the bootstrap role, create the role, attach two managed policies, put an inline policy.
Prints accounts per second. Endpoints and credentials come from the AWS_* environment.
"""

import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import boto3

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"}]})
INLINE = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
MANAGED = ["arn:aws:iam::aws:policy/SecurityAudit", "arn:aws:iam::aws:policy/ReadOnlyAccess"]


def main():
    accounts = [line.strip() for line in open(sys.argv[1]) if line.strip()]
    role, threads, cleanup = sys.argv[2], int(sys.argv[3]), "--cleanup" in sys.argv
    session = boto3.session.Session(region_name=os.environ.get("AWS_REGION", "us-east-1"))

    def one(account):
        sts = session.client("sts")
        c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/OrganizationAccountAccessRole",
                            RoleSessionName="boto3-rollout")["Credentials"]
        iam = session.client("iam", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                             aws_session_token=c["SessionToken"])
        if cleanup:
            for arn in MANAGED:
                try:
                    iam.detach_role_policy(RoleName=role, PolicyArn=arn)
                except Exception:
                    pass
            for call in (lambda: iam.delete_role_policy(RoleName=role, PolicyName="deny"), lambda: iam.delete_role(RoleName=role)):
                try:
                    call()
                except Exception:
                    pass
            return
        iam.create_role(RoleName=role, Path="/crossrole/", AssumeRolePolicyDocument=TRUST)
        for arn in MANAGED:
            iam.attach_role_policy(RoleName=role, PolicyArn=arn)
        iam.put_role_policy(RoleName=role, PolicyName="deny", PolicyDocument=INLINE)

    started = time.monotonic()
    if threads <= 1:
        for a in accounts:
            one(a)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(one, accounts))
    print(len(accounts) / (time.monotonic() - started))


if __name__ == "__main__":
    main()
