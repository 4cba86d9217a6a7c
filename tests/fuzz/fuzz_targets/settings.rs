//! A `.env` file and the values in it, as an operator may write them: parsed into settings.
//! Nothing may panic; a refusal names a declared setting; what parses also validates or is
//! refused with a setting's name.
#![no_main]

use gb_runtime::settings::{DECLARATIONS, Settings, parse_dotenv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let values = parse_dotenv(text);
    let lookup = |name: &str| values.get(name).cloned();
    match Settings::from_lookup(&lookup) {
        Ok(settings) => {
            if let Err(error) = settings.validate() {
                assert!(
                    DECLARATIONS
                        .iter()
                        .any(|declaration| declaration.name == error.name)
                );
            }
        }
        Err(error) => {
            assert!(
                DECLARATIONS
                    .iter()
                    .any(|declaration| declaration.name == error.name)
            );
        }
    }
});
