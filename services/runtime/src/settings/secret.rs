//! A value that never prints: settings that are secrets (keys, tokens, proxy passwords) are
//! held in [`Secret`], whose `Debug` shows only that a value is there.

/// A secret; read it with [`Secret::expose`], where it is used.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let secret = Secret::new(vec!["AIzaSyVerySecret".to_owned()]);
        assert_eq!(format!("{secret:?}"), "Secret(..)");
        assert_eq!(secret.expose()[0], "AIzaSyVerySecret");
    }
}
