//! Identifiers: UUIDs with a type of their own, so that a user id cannot be passed where a
//! session id is wanted.

/// Declares `pub struct $name(Uuid)` with `from_uuid`, `as_uuid` and `Display`.
macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct $name(uuid::Uuid);

        impl $name {
            #[must_use]
            pub fn from_uuid(id: uuid::Uuid) -> Self {
                Self(id)
            }

            #[must_use]
            pub fn as_uuid(&self) -> uuid::Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

pub(crate) use uuid_id;
