//! The wire contract of events: the JSON body every message carries.
//!
//! `{"event":"user.registered","data":{"id","email","username","createdAt"},"timestamp"}`, times
//! in ISO-8601 UTC with milliseconds. Fields are written in that order; readers accept extra
//! fields so that adding one never breaks a consumer.
use chrono::{DateTime, Utc};
use domain::{Email, EventId, Timestamp, UserId, UserRegistered, Username};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct Envelope<D> {
    event: String,
    data: D,
    timestamp: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserRegisteredData {
    id: Uuid,
    email: String,
    username: String,
    created_at: String,
}

/// The JSON body announcing a registration.
#[must_use]
pub fn encode_user_registered(event: &UserRegistered) -> String {
    let envelope = Envelope {
        event: UserRegistered::TYPE.to_owned(),
        data: UserRegisteredData {
            id: event.user_id.as_uuid(),
            email: event.email.to_string(),
            username: event.username.to_string(),
            created_at: event.created_at.to_string(),
        },
        timestamp: event.occurred_at.to_string(),
    };
    serde_json::to_string(&envelope).expect("an envelope of strings always serialises")
}

/// An event read from the broker, checked against the contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncomingEvent {
    UserRegistered(UserRegistered),
    /// A well-formed envelope of a type this service does not know; it is not an error.
    Other {
        event_id: EventId,
        event_type: String,
        occurred_at: Timestamp,
    },
}

impl IncomingEvent {
    #[must_use]
    pub fn event_id(&self) -> EventId {
        match self {
            Self::UserRegistered(event) => event.event_id,
            Self::Other { event_id, .. } => *event_id,
        }
    }

    #[must_use]
    pub fn event_type(&self) -> &str {
        match self {
            Self::UserRegistered(_) => UserRegistered::TYPE,
            Self::Other { event_type, .. } => event_type,
        }
    }

    #[must_use]
    pub fn occurred_at(&self) -> Timestamp {
        match self {
            Self::UserRegistered(event) => event.occurred_at,
            Self::Other { occurred_at, .. } => *occurred_at,
        }
    }
}

/// Why a message is not a valid event. Such a message can never succeed, however often it
/// is retried.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("message_id must be the event's UUID")]
    MessageId,
    #[error("event must be a type name of 1 to 100 letters, digits, '.', '_' or '-'")]
    EventType,
    #[error("body is not a valid envelope: {0}")]
    Envelope(#[from] serde_json::Error),
    #[error("{field} is not an ISO-8601 time")]
    Time { field: &'static str },
    #[error("data.email is invalid: {0}")]
    Email(#[from] domain::EmailError),
    #[error("data.username is invalid: {0}")]
    Username(#[from] domain::UsernameError),
}

/// Decodes a message body; `message_id` is the AMQP property carrying the event id.
///
/// # Errors
/// [`DecodeError`] says which part of the contract the message breaks.
pub fn decode_event(message_id: Option<&str>, body: &[u8]) -> Result<IncomingEvent, DecodeError> {
    let event_id = message_id
        .and_then(|id| Uuid::parse_str(id).ok())
        .map(EventId::from_uuid)
        .ok_or(DecodeError::MessageId)?;
    let envelope: Envelope<serde_json::Value> = serde_json::from_slice(body)?;
    // Checked before anything logs it: a type name is short and plain, never a line break.
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !(1..=100).contains(&envelope.event.len()) || !envelope.event.chars().all(plain) {
        return Err(DecodeError::EventType);
    }
    let occurred_at = parse_time("timestamp", &envelope.timestamp)?;
    if envelope.event != UserRegistered::TYPE {
        return Ok(IncomingEvent::Other {
            event_id,
            event_type: envelope.event,
            occurred_at,
        });
    }
    let data: UserRegisteredData = serde_json::from_value(envelope.data)?;
    Ok(IncomingEvent::UserRegistered(UserRegistered {
        event_id,
        user_id: UserId::from_uuid(data.id),
        email: Email::parse(&data.email)?,
        username: Username::parse(&data.username)?,
        created_at: parse_time("data.createdAt", &data.created_at)?,
        occurred_at,
    }))
}

fn parse_time(field: &'static str, value: &str) -> Result<Timestamp, DecodeError> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| Timestamp::from_datetime(time.with_timezone(&Utc)))
        .map_err(|_| DecodeError::Time { field })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0199fd4e-8a3b-7c1e-9d2f-3a4b5c6d7e8f";

    fn registered() -> UserRegistered {
        let at = |s| Timestamp::from_datetime(DateTime::parse_from_rfc3339(s).unwrap().into());
        UserRegistered {
            event_id: EventId::from_uuid(Uuid::parse_str(ID).unwrap()),
            user_id: UserId::from_uuid(Uuid::nil()),
            email: Email::parse("alice@example.com").unwrap(),
            username: Username::parse("alice").unwrap(),
            created_at: at("2025-10-19T16:37:15.123Z"),
            occurred_at: at("2025-10-19T16:37:15.456Z"),
        }
    }

    #[test]
    fn encodes_the_seed_shape_byte_for_byte() {
        assert_eq!(
            encode_user_registered(&registered()),
            r#"{"event":"user.registered","data":{"id":"00000000-0000-0000-0000-000000000000","email":"alice@example.com","username":"alice","createdAt":"2025-10-19T16:37:15.123Z"},"timestamp":"2025-10-19T16:37:15.456Z"}"#
        );
    }

    #[test]
    fn decoding_what_was_encoded_gives_the_event_back() {
        let body = encode_user_registered(&registered());
        let decoded = decode_event(Some(ID), body.as_bytes()).unwrap();
        assert_eq!(decoded, IncomingEvent::UserRegistered(registered()));
    }

    #[test]
    fn extra_fields_are_accepted_and_unknown_types_are_not_errors() {
        let body =
            br#"{"event":"user.deleted","data":{},"timestamp":"2025-10-19T16:37:15.456Z","v":2}"#;
        let decoded = decode_event(Some(ID), body).unwrap();
        assert!(
            matches!(decoded, IncomingEvent::Other { ref event_type, .. } if event_type == "user.deleted")
        );
    }

    #[test]
    fn messages_breaking_the_contract_are_rejected() {
        let valid = encode_user_registered(&registered());
        let cases: [(Option<&str>, &str, &str); 10] = [
            (None, &valid, "no message id"),
            (Some("42"), &valid, "message id is not a UUID"),
            (Some(ID), "not json", "not JSON"),
            (
                Some(ID),
                r#"{"event":"user.registered","timestamp":"2025-10-19T16:37:15.456Z"}"#,
                "no data",
            ),
            (
                Some(ID),
                r#"{"event":"user.registered","data":{"id":"x","email":"a@b.co","username":"abc","createdAt":"2025-10-19T16:37:15.456Z"},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
                "id not a UUID",
            ),
            (
                Some(ID),
                r#"{"event":"user.registered","data":{"id":"00000000-0000-0000-0000-000000000000","email":"nope","username":"abc","createdAt":"2025-10-19T16:37:15.456Z"},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
                "bad email",
            ),
            (
                Some(ID),
                r#"{"event":"user.registered","data":{"id":"00000000-0000-0000-0000-000000000000","email":"a@b.co","username":"abc","createdAt":"yesterday"},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
                "bad createdAt",
            ),
            (
                Some(ID),
                r#"{"event":"user.registered","data":{},"timestamp":"soon"}"#,
                "bad timestamp",
            ),
            (
                Some(ID),
                "{\"event\":\"user.deleted\\n\\u001b[31mFAKE\",\"data\":{},\"timestamp\":\"2025-10-19T16:37:15.456Z\"}",
                "a type that would forge a log line",
            ),
            (
                Some(ID),
                r#"{"event":"","data":{},"timestamp":"2025-10-19T16:37:15.456Z"}"#,
                "empty type",
            ),
        ];
        for (message_id, body, why) in cases {
            assert!(
                decode_event(message_id, body.as_bytes()).is_err(),
                "must be rejected: {why}"
            );
        }
    }
}
