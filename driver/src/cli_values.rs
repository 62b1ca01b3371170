//! Parsers for `ferry start`'s values, shared by the command line, the environment and
//! `Passengerfile.json`, so a value is judged the same way wherever it comes from. Each error
//! says what would work; clap (or [`crate::settings`]) adds which flag it was for.

use std::str::FromStr;

/// A whole number, 0 or more.
pub fn count<T: FromStr>(text: &str) -> Result<T, String> {
    let text = text.trim();
    if text.starts_with('-') {
        return Err("a negative number cannot work here; give 0 or more".into());
    }
    text.parse()
        .map_err(|_| format!("'{text}' is not a whole number; give 0 or more"))
}

/// A whole number, 1 or more: 0 would leave nothing able to start or be waited for.
pub fn at_least_one<T: FromStr + PartialEq + Default>(text: &str) -> Result<T, String> {
    let value: T = count(text).map_err(|e| e.replace("0 or more", "1 or more"))?;
    if value == T::default() {
        return Err("0 cannot work here; give 1 or more".into());
    }
    Ok(value)
}

/// A TCP port, 0 to 65535 (0: any free port).
pub fn port(text: &str) -> Result<u16, String> {
    count::<u64>(text)
        .map_err(|e| e.replace("give 0 or more", "give a port from 1 to 65535"))?
        .try_into()
        .map_err(|_| format!("{} is not a port; give one from 1 to 65535", text.trim()))
}

/// An environment name: any word, as Passenger takes any (staging, test, …).
pub fn environment(text: &str) -> Result<String, String> {
    let valid = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if valid {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{text}' is not an environment name; use letters, digits, '_', '-' or '.' \
             (for example development, staging or production)"
        ))
    }
}

/// `NAME=VALUE` for `--envvar`.
pub fn envvar(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if valid_env_name(name) => Ok((name.to_string(), value.to_string())),
        _ => Err(format!(
            "'{text}' is not NAME=VALUE with NAME made of letters, digits and '_'"
        )),
    }
}

pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_and_zero_values_are_refused_with_what_would_work() {
        assert!(count::<u64>("-1").unwrap_err().contains("negative"));
        assert_eq!(count::<u64>("0"), Ok(0));
        assert!(at_least_one::<u64>("0").unwrap_err().contains("1 or more"));
        assert!(at_least_one::<u64>("-3").unwrap_err().contains("1 or more"));
        assert_eq!(at_least_one::<usize>("4"), Ok(4));
        assert!(count::<u32>("ten").unwrap_err().contains("'ten'"));
        assert!(port("70000").unwrap_err().contains("not a port"));
        assert_eq!(port("8080"), Ok(8080));
    }

    #[test]
    fn environments_and_envvars() {
        assert_eq!(environment("staging").as_deref(), Ok("staging"));
        assert!(environment("a b").is_err());
        assert_eq!(envvar("A_1=x=y"), Ok(("A_1".into(), "x=y".into())));
        assert!(envvar("1A=x").is_err());
        assert!(envvar("novalue").is_err());
    }
}
