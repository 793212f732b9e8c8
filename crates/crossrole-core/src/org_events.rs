//! AWS Organizations events, as EventBridge delivers them to an SQS queue: what changed in the organization.
//!
//! Organizations reports its API calls through CloudTrail, and EventBridge (in us-east-1, in the management
//! account) forwards them with `source: aws.organizations` and `detail-type` either `AWS API Call via CloudTrail`
//! (a call someone made: `MoveAccount`, `CloseAccount`…) or `AWS Service Event via CloudTrail` (what Organizations
//! did by itself: `CreateAccountResult`, when an account it was asked to create exists). The body of each SQS
//! message is one such event as JSON — or, when the queue is fed through SNS, an SNS notification whose `Message`
//! is the event.
//!
//! [`parse`] turns one message body into the [`OrgChange`] it stands for, or says why it is ignored (a call that
//! failed, an account still being created, an event crossrole does not act on) or why it is malformed. Account ids
//! and parent ids are checked for their shape before anything would use them in an AWS call. The event only says
//! where to look: crossroled reads the account from Organizations before acting, so an event replayed, delivered
//! twice or out of order changes nothing that Organizations does not confirm.

use serde_json::Value;

use crate::names::is_account_id;

/// What an event says changed in the organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgChange {
    /// An account joined: created (`CreateAccountResult` SUCCEEDED) or invited and accepted (`AcceptHandshake`).
    Joined {
        /// The account.
        account_id: String,
    },
    /// An account moved between parents (`MoveAccount`).
    Moved {
        /// The account.
        account_id: String,
        /// Where it was.
        from: String,
        /// Where it is.
        to: String,
    },
    /// An account left: closed (`CloseAccount`), removed (`RemoveAccountFromOrganization`) or it left
    /// (`LeaveOrganization`).
    Left {
        /// The account.
        account_id: String,
    },
    /// An account's tags changed (`TagResource`, `UntagResource` on an account).
    Tagged {
        /// The account.
        account_id: String,
    },
    /// The units changed (`CreateOrganizationalUnit`, `UpdateOrganizationalUnit`, `DeleteOrganizationalUnit`):
    /// paths the selectors name may mean other units now.
    Units,
}

impl OrgChange {
    /// The account the change is about, if it is about one.
    pub fn account_id(&self) -> Option<&str> {
        match self {
            OrgChange::Joined { account_id }
            | OrgChange::Moved { account_id, .. }
            | OrgChange::Left { account_id }
            | OrgChange::Tagged { account_id } => Some(account_id),
            OrgChange::Units => None,
        }
    }

    /// A short name of the kind of change, for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            OrgChange::Joined { .. } => "joined",
            OrgChange::Moved { .. } => "moved",
            OrgChange::Left { .. } => "left",
            OrgChange::Tagged { .. } => "tagged",
            OrgChange::Units => "units",
        }
    }
}

/// An event crossrole acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgEvent {
    /// EventBridge's id of the event.
    pub id: String,
    /// The Organizations call or service event (`MoveAccount`, `CreateAccountResult`…).
    pub name: String,
    /// When it happened, as the event says (RFC 3339).
    pub time: String,
    /// What changed.
    pub change: OrgChange,
    /// The event as it came (its envelope: `detail-type`, `account`, `region`), for the origin check.
    pub raw: Value,
}

/// What a message body is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// An event to act on.
    Change(OrgEvent),
    /// A well-formed event with nothing to do, and why.
    Ignored(String),
    /// Not an event of the expected shape, and what is wrong.
    Malformed(String),
}

/// The longest message body looked at (SQS's own limit is 256 KiB).
pub const MAX_BODY: usize = 256 * 1024;

/// Where a genuine event comes from: EventBridge in the organization's management account, in the one region
/// Organizations sends its events to (us-east-1; us-gov-west-1 and cn-northwest-1 in those partitions), as one of
/// the two CloudTrail detail types. A message that says otherwise was not sent by the rule crossroled's queue
/// listens to, and costs no AWS call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The management account (`account` of every event), when known.
    pub management_account: Option<String>,
    /// The region Organizations sends events to.
    pub region: String,
}

impl Origin {
    /// The origin for `partition`, with the management account if it is known.
    pub fn new(partition: crate::names::Partition, management_account: Option<String>) -> Origin {
        let region = match partition {
            crate::names::Partition::Aws => "us-east-1",
            crate::names::Partition::AwsUsGov => "us-gov-west-1",
            crate::names::Partition::AwsCn => "cn-northwest-1",
        };
        Origin { management_account, region: region.into() }
    }

    fn check(&self, event: &Value) -> Result<(), String> {
        let detail_type = text(event, &["detail-type"]).unwrap_or_default();
        if !matches!(detail_type, "AWS API Call via CloudTrail" | "AWS Service Event via CloudTrail") {
            return Err(format!("detail-type {detail_type:?} is not one of CloudTrail's"));
        }
        let region = text(event, &["region"]).unwrap_or_default();
        if region != self.region {
            return Err(format!("region {region:?}: Organizations sends its events from {}", self.region));
        }
        if let Some(management) = &self.management_account {
            let account = text(event, &["account"]).unwrap_or_default();
            if account != management {
                return Err(format!("account {account:?} is not the organization's management account"));
            }
        }
        Ok(())
    }
}

/// Reads one SQS message body (see the module's documentation), checking that it comes from `origin`.
pub fn parse_from(body: &str, origin: &Origin) -> Parsed {
    match parse(body) {
        Parsed::Change(event) => match origin.check(&event.raw) {
            Ok(()) => Parsed::Change(event),
            Err(why) => Parsed::Malformed(why),
        },
        other => other,
    }
}

/// Reads one SQS message body (see the module's documentation), without checking where it comes from.
pub fn parse(body: &str) -> Parsed {
    if body.len() > MAX_BODY {
        return Parsed::Malformed(format!("the message is {} bytes; at most {MAX_BODY} are read", body.len()));
    }
    let event: Value = match serde_json::from_str(body) {
        Ok(v) => v,
        Err(e) => return Parsed::Malformed(format!("the message is not JSON: {e}")),
    };
    // Through SNS, the event is the notification's Message, itself JSON.
    if event.get("Type").and_then(Value::as_str) == Some("Notification")
        && let Some(inner) = event.get("Message").and_then(Value::as_str)
    {
        return match serde_json::from_str::<Value>(inner) {
            Ok(inner) => parse_event(&inner),
            Err(e) => Parsed::Malformed(format!("the SNS notification's Message is not JSON: {e}")),
        };
    }
    parse_event(&event)
}

fn text<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_str()
}

fn parse_event(event: &Value) -> Parsed {
    let Some(source) = text(event, &["source"]) else {
        return Parsed::Malformed("the event has no `source` (is this an EventBridge event?)".into());
    };
    if source != "aws.organizations" {
        return Parsed::Ignored(format!("source {source:?} is not aws.organizations"));
    }
    let Some(detail) = event.get("detail").filter(|d| d.is_object()) else {
        return Parsed::Malformed("the event has no `detail` object".into());
    };
    let Some(name) = text(detail, &["eventName"]) else {
        return Parsed::Malformed("the event's detail has no `eventName`".into());
    };
    if let Some(code) = text(detail, &["errorCode"]) {
        return Parsed::Ignored(format!("{name} failed ({code}); nothing changed"));
    }
    let change = match change(name, detail) {
        Ok(Some(c)) => c,
        Ok(None) => return Parsed::Ignored(format!("{name} does not change which accounts crossrole works on")),
        Err(why) => return Parsed::Malformed(format!("{name}: {why}")),
    };
    let envelope = ["detail-type", "account", "region"]
        .iter()
        .filter_map(|k| Some((k.to_string(), event.get(k)?.clone())))
        .collect::<serde_json::Map<String, Value>>();
    Parsed::Change(OrgEvent {
        id: text(event, &["id"]).unwrap_or_default().chars().take(128).collect(),
        name: name.to_string(),
        time: text(event, &["time"]).unwrap_or_default().chars().take(64).collect(),
        change,
        raw: Value::Object(envelope),
    })
}

/// The change an Organizations event stands for; `None` for events crossrole does not act on.
fn change(name: &str, detail: &Value) -> Result<Option<OrgChange>, String> {
    let request = |field: &str| text(detail, &["requestParameters", field]);
    Ok(Some(match name {
        "CreateAccountResult" => {
            let status = detail
                .pointer("/serviceEventDetails/createAccountStatus")
                .ok_or("no serviceEventDetails.createAccountStatus")?;
            match text(status, &["state"]) {
                Some("SUCCEEDED") => {}
                Some(_) => return Ok(None),
                None => return Err("createAccountStatus has no state".into()),
            }
            OrgChange::Joined { account_id: account(text(status, &["accountId"]), "createAccountStatus.accountId")? }
        }
        "AcceptHandshake" => {
            let parties = detail.pointer("/responseElements/handshake/parties").and_then(Value::as_array);
            let party = parties
                .and_then(|p| p.iter().find(|p| text(p, &["type"]) == Some("ACCOUNT")))
                .and_then(|p| text(p, &["id"]));
            let caller = text(detail, &["userIdentity", "accountId"]);
            OrgChange::Joined { account_id: account(party.or(caller), "the handshake's ACCOUNT party")? }
        }
        "MoveAccount" => OrgChange::Moved {
            account_id: account(request("accountId"), "requestParameters.accountId")?,
            from: parent(request("sourceParentId"), "requestParameters.sourceParentId")?,
            to: parent(request("destinationParentId"), "requestParameters.destinationParentId")?,
        },
        "CloseAccount" | "RemoveAccountFromOrganization" => {
            OrgChange::Left { account_id: account(request("accountId"), "requestParameters.accountId")? }
        }
        "LeaveOrganization" => {
            let who = text(detail, &["userIdentity", "accountId"]).or(text(detail, &["recipientAccountId"]));
            OrgChange::Left { account_id: account(who, "userIdentity.accountId")? }
        }
        "TagResource" | "UntagResource" => match request("resourceId") {
            // Tags of units, roots and policies do not select accounts.
            Some(id) if is_account_id(id) => OrgChange::Tagged { account_id: id.to_string() },
            Some(_) => return Ok(None),
            None => return Err("no requestParameters.resourceId".into()),
        },
        "CreateOrganizationalUnit" | "UpdateOrganizationalUnit" | "DeleteOrganizationalUnit" => OrgChange::Units,
        _ => return Ok(None),
    }))
}

fn account(value: Option<&str>, field: &str) -> Result<String, String> {
    match value {
        Some(id) if is_account_id(id) => Ok(id.to_string()),
        Some(_) => Err(format!("{field} is not a 12-digit account id")),
        None => Err(format!("no {field}")),
    }
}

/// A root (`r-` and 4–32 lowercase letters or digits) or unit (`ou-`, then two such groups) id.
fn is_parent_id(s: &str) -> bool {
    let group =
        |g: &str| !g.is_empty() && g.len() <= 32 && g.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix("r-") {
        return rest.len() >= 4 && group(rest);
    }
    let Some(rest) = s.strip_prefix("ou-") else { return false };
    let mut parts = rest.split('-');
    matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None) if group(a) && group(b))
}

fn parent(value: Option<&str>, field: &str) -> Result<String, String> {
    match value {
        Some(id) if is_parent_id(id) => Ok(id.to_string()),
        Some(_) => Err(format!("{field} is not a root or unit id")),
        None => Err(format!("no {field}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An event in the shape EventBridge delivers it.
    fn event(detail_type: &str, detail: Value) -> String {
        serde_json::json!({
            "version": "0",
            "id": "6f7c1d2e-0000-4000-8000-000000000001",
            "detail-type": detail_type,
            "source": "aws.organizations",
            "account": "111111111111",
            "time": "2026-11-29T12:00:00Z",
            "region": "us-east-1",
            "resources": [],
            "detail": detail,
        })
        .to_string()
    }

    fn call(name: &str, request: Value) -> String {
        event(
            "AWS API Call via CloudTrail",
            serde_json::json!({
                "eventVersion": "1.08",
                "userIdentity": {"type": "AssumedRole", "accountId": "111111111111"},
                "eventSource": "organizations.amazonaws.com",
                "eventName": name,
                "awsRegion": "us-east-1",
                "requestParameters": request,
                "responseElements": null,
            }),
        )
    }

    fn change_of(body: &str) -> OrgChange {
        match parse(body) {
            Parsed::Change(e) => e.change,
            other => panic!("expected a change, got {other:?}"),
        }
    }

    #[test]
    fn a_created_account_joins_once_it_succeeded() {
        let created = |state: &str| {
            event(
                "AWS Service Event via CloudTrail",
                serde_json::json!({
                    "eventSource": "organizations.amazonaws.com",
                    "eventName": "CreateAccountResult",
                    "serviceEventDetails": {"createAccountStatus": {
                        "id": "car-0123456789abcdef", "state": state, "accountName": "new",
                        "accountId": "222222222222",
                    }},
                }),
            )
        };
        let Parsed::Change(e) = parse(&created("SUCCEEDED")) else { panic!() };
        assert_eq!(e.change, OrgChange::Joined { account_id: "222222222222".into() });
        assert_eq!((e.name.as_str(), e.time.as_str()), ("CreateAccountResult", "2026-11-29T12:00:00Z"));
        assert!(matches!(parse(&created("FAILED")), Parsed::Ignored(_)));
        assert!(matches!(parse(&created("IN_PROGRESS")), Parsed::Ignored(_)));
    }

    #[test]
    fn moves_closes_removals_and_tags_name_their_account() {
        let moved = call(
            "MoveAccount",
            serde_json::json!({"accountId": "222222222222", "sourceParentId": "r-ab12",
                "destinationParentId": "ou-ab12-cdefgh34"}),
        );
        assert_eq!(
            change_of(&moved),
            OrgChange::Moved {
                account_id: "222222222222".into(),
                from: "r-ab12".into(),
                to: "ou-ab12-cdefgh34".into()
            }
        );
        for name in ["CloseAccount", "RemoveAccountFromOrganization"] {
            let body = call(name, serde_json::json!({"accountId": "333333333333"}));
            assert_eq!(change_of(&body), OrgChange::Left { account_id: "333333333333".into() });
        }
        let tagged = call("TagResource", serde_json::json!({"resourceId": "444444444444", "tags": []}));
        assert_eq!(change_of(&tagged), OrgChange::Tagged { account_id: "444444444444".into() });
        let unit_tagged = call("TagResource", serde_json::json!({"resourceId": "ou-ab12-cdefgh34", "tags": []}));
        assert!(matches!(parse(&unit_tagged), Parsed::Ignored(_)));
        let renamed = call("UpdateOrganizationalUnit", serde_json::json!({"organizationalUnitId": "ou-ab12-cdefgh34"}));
        assert_eq!(change_of(&renamed), OrgChange::Units);
    }

    #[test]
    fn an_accepted_invitation_joins_the_invited_account() {
        let body = event(
            "AWS API Call via CloudTrail",
            serde_json::json!({
                "eventName": "AcceptHandshake",
                "userIdentity": {"accountId": "555555555555"},
                "responseElements": {"handshake": {"action": "INVITE", "state": "ACCEPTED", "parties": [
                    {"id": "o-abcdefghij", "type": "ORGANIZATION"},
                    {"id": "555555555555", "type": "ACCOUNT"},
                ]}},
            }),
        );
        assert_eq!(change_of(&body), OrgChange::Joined { account_id: "555555555555".into() });
    }

    #[test]
    fn a_notification_from_sns_is_read_through() {
        let inner = call("CloseAccount", serde_json::json!({"accountId": "333333333333"}));
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": inner}).to_string();
        assert_eq!(change_of(&sns), OrgChange::Left { account_id: "333333333333".into() });
    }

    #[test]
    fn failed_calls_other_sources_and_other_calls_are_ignored() {
        let mut failed: Value =
            serde_json::from_str(&call("MoveAccount", serde_json::json!({"accountId": "222222222222"}))).unwrap();
        failed["detail"]["errorCode"] = "AccessDenied".into();
        assert!(matches!(parse(&failed.to_string()), Parsed::Ignored(why) if why.contains("AccessDenied")));
        let mut other: Value = serde_json::from_str(&call("CloseAccount", serde_json::json!({}))).unwrap();
        other["source"] = "aws.ec2".into();
        assert!(matches!(parse(&other.to_string()), Parsed::Ignored(_)));
        assert!(matches!(parse(&call("ListAccounts", serde_json::json!({}))), Parsed::Ignored(_)));
    }

    #[test]
    fn an_event_from_elsewhere_than_the_organizations_rule_is_malformed() {
        let origin = Origin::new(crate::names::Partition::Aws, Some("111111111111".into()));
        let body = call("CloseAccount", serde_json::json!({"accountId": "333333333333"}));
        assert!(matches!(parse_from(&body, &origin), Parsed::Change(_)));
        let with = |field: &str, value: &str| {
            let mut v: Value = serde_json::from_str(&body).unwrap();
            v[field] = value.into();
            v.to_string()
        };
        for (field, value, says) in [
            ("account", "999999999999", "management account"),
            ("region", "eu-west-1", "region"),
            ("detail-type", "Forged Event", "detail-type"),
        ] {
            let forged = with(field, value);
            assert!(matches!(parse_from(&forged, &origin), Parsed::Malformed(why) if why.contains(says)), "{field}");
        }
        // Not knowing the management account yet, the rest is still checked.
        let unknown = Origin::new(crate::names::Partition::Aws, None);
        assert!(matches!(parse_from(&with("account", "999999999999"), &unknown), Parsed::Change(_)));
        assert!(matches!(parse_from(&with("region", "eu-west-1"), &unknown), Parsed::Malformed(_)));
        let gov = Origin::new(crate::names::Partition::AwsUsGov, None);
        assert!(matches!(parse_from(&with("region", "us-gov-west-1"), &gov), Parsed::Change(_)));
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        let cases = [
            ("not json", "not JSON"),
            ("{}", "source"),
            (r#"{"source":"aws.organizations"}"#, "detail"),
            (r#"{"source":"aws.organizations","detail":{}}"#, "eventName"),
        ];
        for (body, says) in cases {
            assert!(matches!(parse(body), Parsed::Malformed(why) if why.contains(says)), "{body}");
        }
        let bad_account = call("CloseAccount", serde_json::json!({"accountId": "12345; rm -rf"}));
        assert!(matches!(parse(&bad_account), Parsed::Malformed(why) if why.contains("12-digit")));
        let bad_parent = call(
            "MoveAccount",
            serde_json::json!({"accountId": "222222222222", "sourceParentId": "r-ab12",
                "destinationParentId": "../../etc"}),
        );
        assert!(matches!(parse(&bad_parent), Parsed::Malformed(why) if why.contains("destinationParentId")));
        let huge = "x".repeat(MAX_BODY + 1);
        assert!(matches!(parse(&huge), Parsed::Malformed(why) if why.contains("at most")));
    }
}
