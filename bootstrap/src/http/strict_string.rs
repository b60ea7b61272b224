//! A JSON string field that accepts only strings.
//!
//! poem-openapi's `String` also accepts numbers and booleans (`12345678` becomes
//! `"12345678"`); a client sending the wrong type should hear about it, not be guessed at.
use poem_openapi::registry::{MetaSchema, MetaSchemaRef};
use poem_openapi::types::{ParseError, ParseFromJSON, ParseResult, ToJSON, Type};
use serde_json::Value;
use std::borrow::Cow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictString(pub String);

impl Type for StrictString {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new("string")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(
        &'a self,
    ) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromJSON for StrictString {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Ok(Self(text)),
            // Say what was expected without echoing the value, which may be a password.
            Some(other) => Err(ParseError::custom(format!(
                "expected a string, got {}",
                json_kind(&other)
            ))),
            None => Err(ParseError::custom("a required field is missing")),
        }
    }
}

impl ToJSON for StrictString {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.clone()))
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_strings_are_accepted() {
        assert_eq!(
            StrictString::parse_from_json(Some(json!("x"))).unwrap().0,
            "x"
        );
        for value in [
            json!(12_345_678),
            json!(true),
            json!(null),
            json!(["x"]),
            json!({"x": 1}),
        ] {
            assert!(
                StrictString::parse_from_json(Some(value.clone())).is_err(),
                "{value}"
            );
        }
        assert!(StrictString::parse_from_json(None).is_err());
    }

    #[test]
    fn the_error_does_not_echo_the_value() {
        let error = StrictString::parse_from_json(Some(json!(98_765_432))).unwrap_err();
        assert!(!error.message().contains("98765432"), "{}", error.message());
    }
}
