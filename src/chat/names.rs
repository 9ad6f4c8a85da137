//! Display names: the readable random ones a new visitor gets, the rules every name follows, and
//! when two names look alike (docs/CHAT.md §2.2).
//!
//! A name is 1 to 30 characters that a reader sees as they are: no control characters, nothing
//! invisible or that reorders the text around it (bidirectional controls, zero-width and
//! default-ignorable code points, blank-looking letters), no spacing but the plain space, nothing
//! unassigned or private-use. Two names look alike when their Unicode TR39 confusable
//! skeletons match without case and spaces ([`Skeletons`]): that is how `Ѕtrеаmеr` (Cyrillic),
//! `Ｓｔｒｅａｍｅｒ` (fullwidth) and `𝐒𝐭𝐫𝐞𝐚𝐦𝐞𝐫` (mathematical bold) are all caught as `Streamer`.

use unicode_normalization::char::{is_combining_mark, is_public_assigned};
use unicode_security::skeleton;

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
    #[error(
        "a name cannot contain invisible characters or ones that change the direction of text \
         (such as zero-width spaces, soft hyphens, variation selectors, blank letters)"
    )]
    Invisible,
    #[error("a name can only have plain spaces between words (no line breaks or other spaces)")]
    Spacing,
    #[error("a name cannot contain unassigned or private-use characters")]
    Unassigned,
    #[error("that name is the streamer's, or looks like it")]
    Reserved,
    #[error("someone in the chat has that name, or one that looks like it")]
    Taken,
}

/// The name as it will be shown (trimmed), or why it cannot be one. Whether it looks like a name
/// somebody else holds is [`Skeletons`]' business.
pub fn check_name(name: &str) -> Result<String, NameError> {
    let name = name.trim();
    for c in name.chars() {
        if c.is_control() {
            return Err(NameError::ControlCharacter);
        }
        if is_invisible(c) {
            return Err(NameError::Invisible);
        }
        if c.is_whitespace() && c != ' ' {
            return Err(NameError::Spacing);
        }
        if !is_public_assigned(c) {
            return Err(NameError::Unassigned);
        }
    }
    if !name.chars().any(|c| c != ' ' && !is_combining_mark(c)) {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    Ok(name.to_owned())
}

/// Characters that show nothing, or change how the text around them is laid out:
/// - the default-ignorable code points (Unicode's `Default_Ignorable_Code_Point`: the bidi
///   embeddings, overrides, isolates and marks, zero-width space and joiners, soft hyphen,
///   combining grapheme joiner, variation selectors, tag characters, the Hangul fillers U+3164
///   and U+FFA0...). TR39's skeleton removes exactly these (UTS 39 §4), and unicode-security
///   keeps their table private, so a character is one when its skeleton is empty;
/// - the format characters Unicode leaves out of that property although they show nothing: the
///   interlinear annotation controls U+FFF9..U+FFFB and the Egyptian hieroglyph format controls
///   U+13430..U+1345F;
/// - letters drawn blank: U+2800 BRAILLE PATTERN BLANK and U+1D159 MUSICAL SYMBOL NULL NOTEHEAD.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{fff9}'..='\u{fffb}' | '\u{13430}'..='\u{1345f}' | '\u{2800}' | '\u{1d159}'
    ) || skeleton(c.encode_utf8(&mut [0; 4])).next().is_none()
}

/// What a name looks like, to tell whether two names could be taken for each other: its TR39
/// confusable skeleton (every look-alike mapped to one prototype: Cyrillic `е`, fullwidth `ｅ`
/// and mathematical `𝐞` are `e`; `m` is `rn`; `0` is `O`), lower-cased, without spaces.
///
/// Two keys, because case and shape do not commute: the skeleton maps capital `I` to `l`, so
/// `AIi` looks like `Ali` only before lower-casing, and `ALI` is `Ali` only after. One key is the
/// skeleton of the lower-cased name, the other the lower-cased skeleton; names look alike when
/// any key of one is a key of the other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skeletons {
    /// One or two keys (one when both are the same).
    keys: Vec<String>,
}

impl Skeletons {
    pub fn of(name: &str) -> Self {
        let fold = |text: &str| -> String {
            skeleton(text)
                .flat_map(char::to_lowercase)
                .filter(|c| !c.is_whitespace())
                .collect()
        };
        let by_case = fold(&name.to_lowercase());
        let by_shape = fold(name);
        let mut keys = vec![by_case];
        if by_shape != keys[0] {
            keys.push(by_shape);
        }
        Skeletons { keys }
    }

    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    pub fn look_alike(&self, other: &Skeletons) -> bool {
        self.keys.iter().any(|key| other.keys.contains(key))
    }
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
            assert_eq!(check_name(&name), Ok(name.clone()));
        }
    }

    #[test]
    fn name_rules() {
        assert_eq!(check_name("  Ana  "), Ok("Ana".into()));
        assert_eq!(check_name("Ana B."), Ok("Ana B.".into()));
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(" \u{200b} "), Err(NameError::Invisible));
        assert_eq!(check_name("a\nb"), Err(NameError::ControlCharacter));
        assert_eq!(check_name(&"é".repeat(30)), Ok("é".repeat(30)));
        assert_eq!(check_name(&"é".repeat(31)), Err(NameError::TooLong));
        // Scripts, accents, emoji and punctuation are names like any other.
        for name in [
            "José",
            "Jose\u{301}",
            "Zoë",
            "李小龙",
            "مريم",
            "Ана",
            "Ana 😀",
            "<b>x</b>",
        ] {
            assert_eq!(check_name(name), Ok(name.into()), "{name:?}");
        }
        // Marks alone show nothing of their own.
        assert_eq!(check_name("\u{301}\u{301}"), Err(NameError::Empty));
    }

    /// Issue 13's list of names that looked exactly like the streamer's "Streamer".
    #[test]
    fn invisible_and_direction_characters_are_refused() {
        let invisible = [
            "\u{202e}remaertS",         // RIGHT-TO-LEFT OVERRIDE: shows as "Streamer"
            "\u{202b}Streamer\u{202c}", // RIGHT-TO-LEFT EMBEDDING ... POP DIRECTIONAL FORMATTING
            "\u{2067}Streamer\u{2069}", // RIGHT-TO-LEFT ISOLATE ... POP DIRECTIONAL ISOLATE
            "Streamer\u{200f}",         // RIGHT-TO-LEFT MARK
            "Streamer\u{61c}",          // ARABIC LETTER MARK
            "Stre\u{ad}amer",           // SOFT HYPHEN
            "Stre\u{34f}amer",          // COMBINING GRAPHEME JOINER
            "Stream\u{200d}er",         // ZERO WIDTH JOINER
            "Streamer\u{e0041}",        // TAG LATIN CAPITAL LETTER A
            "Streamer\u{e007f}",        // CANCEL TAG
            "Streamer\u{fe0f}",         // VARIATION SELECTOR-16
            "Streamer\u{e0100}",        // VARIATION SELECTOR-17
            "Streamer\u{feff}",         // ZERO WIDTH NO-BREAK SPACE (byte order mark)
            "Streamer\u{2064}",         // INVISIBLE PLUS
            "Stream\u{fff9}er\u{fffb}", // INTERLINEAR ANNOTATION ANCHOR ... TERMINATOR
            "\u{3164}",                 // HANGUL FILLER: a blank letter
            "\u{ffa0}",                 // HALFWIDTH HANGUL FILLER
            "\u{115f}\u{1160}",         // HANGUL CHOSEONG / JUNGSEONG FILLER
            "\u{2800}",                 // BRAILLE PATTERN BLANK
            "Ana\u{2800}Streamer",      // ... used as a space
            "\u{1d159}",                // MUSICAL SYMBOL NULL NOTEHEAD
            "\u{180e}Streamer",         // MONGOLIAN VOWEL SEPARATOR
        ];
        for name in invisible {
            assert_eq!(check_name(name), Err(NameError::Invisible), "{name:?}");
        }
        for name in [
            "Stream\u{2028}er", // LINE SEPARATOR
            "Stream\u{2029}er", // PARAGRAPH SEPARATOR
            "Ana\u{a0}B",       // NO-BREAK SPACE
            "Ana\u{3000}B",     // IDEOGRAPHIC SPACE
            "Ana\u{2003}B",     // EM SPACE
        ] {
            assert_eq!(check_name(name), Err(NameError::Spacing), "{name:?}");
        }
        for name in ["\u{e000}", "Ana\u{f8ff}", "\u{fffe}", "\u{50000}"] {
            assert_eq!(check_name(name), Err(NameError::Unassigned), "{name:?}");
        }
    }

    #[test]
    fn look_alikes_have_the_same_skeleton() {
        let streamer = Skeletons::of("Streamer");
        assert_eq!(streamer.keys(), ["strearner"], "m looks like rn");
        for name in [
            "Streamer",
            "streamer",
            "STREAMER",
            "Stream er",
            "Strearner",
            "\u{405}tr\u{435}\u{430}m\u{435}r", // Cyrillic DZE, IE, A: "Ѕtrеаmеr"
            "Ｓｔｒｅａｍｅｒ",                 // fullwidth
            "𝐒𝐭𝐫𝐞𝐚𝐦𝐞𝐫",                         // mathematical bold
            "𝖲𝗍𝗋𝖾𝖺𝗆𝖾𝗋",                         // mathematical sans-serif
        ] {
            assert!(Skeletons::of(name).look_alike(&streamer), "{name:?}");
        }
        for name in ["Streamer!", "Streamers", "Steamer", "Stream"] {
            assert!(!Skeletons::of(name).look_alike(&streamer), "{name:?}");
        }
        // Capital I is drawn like l, and is i once lower-cased: both count.
        let ali = Skeletons::of("Ali");
        assert_eq!(Skeletons::of("AIi").keys(), ["aii", "ali"]);
        assert!(Skeletons::of("AIi").look_alike(&ali));
        assert!(Skeletons::of("ALI").look_alike(&ali));
        assert!(Skeletons::of("0wner").look_alike(&Skeletons::of("Owner")));
        // Composed and decomposed accents are one name.
        assert!(Skeletons::of("José").look_alike(&Skeletons::of("Jose\u{301}")));
        assert!(!Skeletons::of("José").look_alike(&Skeletons::of("Jose")));
    }
}
