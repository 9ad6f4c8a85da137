//! Display names: the readable random ones a new visitor gets, and the rules every name follows
//! (1 to 30 visible characters, not the streamer's).

/// Names are at most this many characters (Unicode scalar values), after trimming.
pub const MAX_NAME_CHARS: usize = 30;

const ADJECTIVES: &[&str] = &[
    "Amber",
    "Brave",
    "Bright",
    "Calm",
    "Clever",
    "Cosmic",
    "Curious",
    "Daring",
    "Dizzy",
    "Eager",
    "Fancy",
    "Fuzzy",
    "Gentle",
    "Giddy",
    "Golden",
    "Happy",
    "Hidden",
    "Jolly",
    "Kind",
    "Lively",
    "Lucky",
    "Mellow",
    "Merry",
    "Misty",
    "Nimble",
    "Noble",
    "Patient",
    "Plucky",
    "Polite",
    "Quick",
    "Quiet",
    "Rapid",
    "Rosy",
    "Shiny",
    "Silent",
    "Silver",
    "Sleepy",
    "Snappy",
    "Sunny",
    "Swift",
    "Tidy",
    "Tiny",
    "Velvet",
    "Vivid",
    "Wandering",
    "Witty",
    "Zesty",
    "Zippy",
];

const ANIMALS: &[&str] = &[
    "Badger", "Beaver", "Bison", "Capybara", "Cheetah", "Crane", "Dolphin", "Falcon", "Ferret",
    "Finch", "Fox", "Gecko", "Gull", "Hedgehog", "Heron", "Ibis", "Jackal", "Koala", "Lemur",
    "Lynx", "Magpie", "Marmot", "Meerkat", "Moose", "Narwhal", "Newt", "Ocelot", "Otter", "Owl",
    "Panda", "Pelican", "Penguin", "Puffin", "Quokka", "Raccoon", "Raven", "Salmon", "Seal",
    "Sparrow", "Squid", "Swan", "Tapir", "Toucan", "Turtle", "Walrus", "Wombat", "Yak", "Zebra",
];

/// A name like "CalmOtter42" from random bytes (caller supplies the randomness).
pub fn random_name(random: [u8; 3]) -> String {
    let adjective = ADJECTIVES[usize::from(random[0]) % ADJECTIVES.len()];
    let animal = ANIMALS[usize::from(random[1]) % ANIMALS.len()];
    format!("{adjective}{animal}{}", random[2] % 100)
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("a name needs at least one visible character")]
    Empty,
    #[error("a name is at most {MAX_NAME_CHARS} characters")]
    TooLong,
    #[error("a name cannot contain control characters")]
    ControlCharacter,
    #[error("that name is the streamer's")]
    Reserved,
}

/// The name as it will be shown (trimmed), or why it cannot be one. `reserved` is the
/// streamer's name, which nobody else can take (compared without case and spaces).
pub fn check_name(name: &str, reserved: &str) -> Result<String, NameError> {
    let name = name.trim();
    if name.chars().any(char::is_control) {
        return Err(NameError::ControlCharacter);
    }
    if !name.chars().any(is_visible) {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if same_name(name, reserved) {
        return Err(NameError::Reserved);
    }
    Ok(name.to_owned())
}

/// Not whitespace, and not one of the invisible formatting characters (zero-width space and
/// joiners, word joiner, byte order mark) that would let a name look empty or like another.
fn is_visible(c: char) -> bool {
    !c.is_whitespace()
        && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}')
}

/// Names that would look the same: compared without case and without invisible characters.
fn same_name(a: &str, b: &str) -> bool {
    let key = |s: &str| -> String {
        s.chars()
            .filter(|c| is_visible(*c))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let (a, b) = (key(a), key(b));
    !b.is_empty() && a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_names_are_readable() {
        assert_eq!(random_name([0, 0, 0]), "AmberBadger0");
        assert_eq!(random_name([3, 27, 242]), "CalmOtter42");
        for b in 0..=255u8 {
            let name = random_name([b, b.wrapping_mul(7), b]);
            assert!(check_name(&name, "streamer").is_ok(), "{name}");
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(check_name("  Ana  ", "Owner"), Ok("Ana".into()));
        assert_eq!(check_name("", "Owner"), Err(NameError::Empty));
        assert_eq!(check_name(" \u{200b} ", "Owner"), Err(NameError::Empty));
        assert_eq!(
            check_name("a\nb", "Owner"),
            Err(NameError::ControlCharacter)
        );
        assert_eq!(check_name(&"é".repeat(30), "Owner"), Ok("é".repeat(30)));
        assert_eq!(
            check_name(&"é".repeat(31), "Owner"),
            Err(NameError::TooLong)
        );
        assert_eq!(check_name("owner", "Owner"), Err(NameError::Reserved));
        assert_eq!(
            check_name("O\u{200b}WNER", "Owner"),
            Err(NameError::Reserved)
        );
        assert_eq!(check_name("Owner2", "Owner"), Ok("Owner2".into()));
    }
}
