"""An account joining the seeded organization, and the events EventBridge would send for it, for the demo.

    org_event.py queue --sqs URL --name NAME
        makes the Organizations events queue and prints its URL;
    org_event.py account --mode M --organizations URL --iam URL --sqs URL --queue-url Q --manifest PATH
                         --ou-path /Root/Workloads/Prod --name NAME
        creates an account (as account vending would: with its bootstrap role), moves it into the OU, puts the
        CreateAccountResult and MoveAccount events on the queue in the shape EventBridge delivers them, and prints
        the account's id.

The emulators do not emit Organizations events by themselves.
"""

import argparse
import json
import uuid
from datetime import datetime, timezone

from seed import BOOTSTRAP_TRUST, MANAGEMENT, client


def event(detail_type, detail):
    return json.dumps({
        "version": "0", "id": str(uuid.uuid4()), "detail-type": detail_type, "source": "aws.organizations",
        "account": MANAGEMENT, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "us-east-1", "resources": [], "detail": detail,
    })


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    q = sub.add_parser("queue")
    q.add_argument("--sqs", required=True)
    q.add_argument("--name", required=True)
    a = sub.add_parser("account")
    for arg in ["--mode", "--organizations", "--iam", "--sqs", "--queue-url", "--manifest", "--ou-path", "--name"]:
        a.add_argument(arg, required=True)
    args = p.parse_args()

    if args.command == "queue":
        print(client("sqs", args.sqs).create_queue(QueueName=args.name)["QueueUrl"])
        return

    manifest = json.load(open(args.manifest))
    root, ou = manifest["ous"]["/Root"], manifest["ous"][args.ou_path]
    org = client("organizations", args.organizations)
    status = org.create_account(AccountName=args.name, Email=f"{args.name}@example.com")["CreateAccountStatus"]
    account = status["AccountId"]
    org.move_account(AccountId=account, SourceParentId=root, DestinationParentId=ou)
    if args.mode == "localstack":
        # LocalStack maps a 12-digit access key to its account: the role account vending would leave there.
        client("iam", args.iam, key=account).create_role(
            RoleName="OrganizationAccountAccessRole", AssumeRolePolicyDocument=BOOTSTRAP_TRUST)
    sqs = client("sqs", args.sqs)
    created = event("AWS Service Event via CloudTrail", {
        "eventSource": "organizations.amazonaws.com", "eventName": "CreateAccountResult",
        "serviceEventDetails": {"createAccountStatus": {"state": "SUCCEEDED", "accountId": account,
                                                        "accountName": args.name}}})
    moved = event("AWS API Call via CloudTrail", {
        "eventSource": "organizations.amazonaws.com", "eventName": "MoveAccount",
        "requestParameters": {"accountId": account, "sourceParentId": root, "destinationParentId": ou}})
    for body in [created, moved]:
        sqs.send_message(QueueUrl=args.queue_url, MessageBody=body)
    print(account)


if __name__ == "__main__":
    main()
