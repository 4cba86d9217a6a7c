//! The one declaration of every setting: [`declare_settings!`] takes, for each, its field, type,
//! environment name, default (in the environment's text form), secrecy, scope and description,
//! and makes from it the typed section structs, their parser, the JSON value by name, and the
//! table ([`Declaration`]s) that the config service, the masked views and the README read.

use super::values::Kind;

/// How a secret is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrecy {
    No,
    /// Each value (or each list item, or each object value) as `AIzaSy…a1b2`.
    Masked,
    /// URLs with what lies between `//` and `@` (the user and password) masked.
    UrlPassword,
    /// Only whether it is set.
    Hidden,
}

/// Where a setting may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Changed through the settings API while the services run.
    Live,
    /// Listed by the settings API, read-only: read from the environment at start.
    Fixed,
    /// Read from each process's environment at start; not listed (addresses, drain, formats).
    Process,
}

/// One setting, as declared.
#[derive(Clone, Copy, Debug)]
pub struct Declaration {
    pub name: &'static str,
    pub kind: Kind,
    /// The environment's text form of the default; empty for none.
    pub default: &'static str,
    pub secrecy: Secrecy,
    pub scope: Scope,
    /// Which service reads it (`shared`: several).
    pub section: &'static str,
    pub description: &'static str,
}

impl Declaration {
    pub fn is_secret(&self) -> bool {
        self.secrecy != Secrecy::No
    }

    pub fn is_editable(&self) -> bool {
        self.scope == Scope::Live
    }

    /// Whether the settings API lists it.
    pub fn is_listed(&self) -> bool {
        self.scope != Scope::Process
    }
}

/// See the module documentation; used once, in `settings/mod.rs`.
macro_rules! declare_settings {
    (
        $(
            $(#[doc = $section_doc:literal])+
            $section:ident: $Section:ident {
                $(
                    $(#[doc = $doc:literal])+
                    $field:ident: $ty:ty = $name:literal, $default:literal, $secrecy:ident, $scope:ident;
                )+
            }
        )+
    ) => {
        $(
            $(#[doc = $section_doc])+
            #[derive(Clone, Debug)]
            pub struct $Section {
                $(
                    $(#[doc = $doc])+
                    pub $field: $ty,
                )+
            }

            impl $Section {
                fn parse(source: &Source<'_>) -> Result<Self, SettingError> {
                    Ok($Section {
                        $( $field: source.value::<$ty>($name, $default)?, )+
                    })
                }

                fn value_json(&self, name: &str) -> Option<serde_json::Value> {
                    match name {
                        $( $name => Some(SettingValue::to_json(&self.$field)), )+
                        _ => None,
                    }
                }
            }
        )+

        /// Every setting, in the order the API and the README show them.
        pub const DECLARATIONS: &[Declaration] = &[
            $($(
                Declaration {
                    name: $name,
                    kind: <$ty as SettingValue>::KIND,
                    default: $default,
                    secrecy: Secrecy::$secrecy,
                    scope: Scope::$scope,
                    section: stringify!($section),
                    description: concat!($($doc, " "),+),
                },
            )+)+
        ];

        /// Every setting, by the service that reads it.
        #[derive(Clone, Debug)]
        pub struct Settings {
            $( pub $section: $Section, )+
            environment: Environment,
        }

        impl Settings {
            fn parse_sections(source: &Source<'_>) -> Result<Self, SettingError> {
                Ok(Settings {
                    $( $section: $Section::parse(source)?, )+
                    environment: Environment::default(),
                })
            }

            /// A setting's effective value as JSON, unmasked; `Null` for an unknown name.
            pub fn config_value(&self, name: &str) -> serde_json::Value {
                $(
                    if let Some(value) = self.$section.value_json(name) {
                        return value;
                    }
                )+
                serde_json::Value::Null
            }
        }
    };
}

pub(crate) use declare_settings;
