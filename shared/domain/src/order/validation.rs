//! The limits and checks of what an order's command may carry (DESIGN §3 limits): identifiers,
//! names and address lines, the number of lines.

use std::collections::HashSet;

use super::CreateOrder;
use crate::error::DomainError;

/// Whether `c` may travel in an SQS message body and every other XML-based AWS API: XML 1.0's
/// `Char` production, `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD | #x10000-#x10FFFF`, which
/// is what SQS documents for message bodies. A Rust `char` is never a surrogate, so of the
/// non-control characters only the noncharacters U+FFFE and U+FFFF fall outside it.
pub const fn is_message_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Checks a one-line text (a name, an address line): not blank, no control characters and no
/// bidirectional embedding, override or isolate controls (which could make it display as
/// something else), and nothing SQS refuses in a message body ([`is_message_char`]): the text
/// travels in stream records, which a dead letter carries whole.
fn require_text(field: &str, value: &str) -> Result<(), DomainError> {
    if value.trim().is_empty() {
        return Err(DomainError::validation(field, "must not be empty"));
    }
    let bidi_control = |c: char| matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if let Some(bad) = value.chars().find(|c| c.is_control() || bidi_control(*c)) {
        return Err(DomainError::validation(
            field,
            format!("must not hold control characters (found {bad:?})"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !is_message_char(*c)) {
        return Err(DomainError::validation(
            field,
            format!(
                "must hold only characters SQS and XML accept (found U+{:04X})",
                u32::from(bad)
            ),
        ));
    }
    Ok(())
}

/// Identifiers become (parts of) DynamoDB keys and of every answer: at most this many
/// characters, each one of [`is_id_char`] (DESIGN §3 limits).
pub const MAX_ID_CHARS: usize = 64;

/// [`MAX_ID_CHARS`] in bytes (identifiers are ASCII).
pub const MAX_ID_BYTES: usize = MAX_ID_CHARS;

/// Names (restaurant, line items) and address lines hold at most this many characters.
pub const MAX_NAME_CHARS: usize = 200;

/// An order holds at most this many line items.
pub const MAX_LINE_ITEMS: usize = 50;

/// Whether `c` may appear in an identifier: `A–Z a–z 0–9 . _ : -`.
pub const fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

/// Checks an identifier: 1 to [`MAX_ID_CHARS`] characters, each one of [`is_id_char`].
pub fn require_id(field: &str, value: &str) -> Result<(), DomainError> {
    if value.is_empty() || value.len() > MAX_ID_CHARS || !value.chars().all(is_id_char) {
        return Err(DomainError::validation(
            field,
            format!("must be 1 to {MAX_ID_CHARS} characters of A-Z, a-z, 0-9, '.', '_', ':', '-'"),
        ));
    }
    Ok(())
}

/// Checks a name or an address line: not blank, at most [`MAX_NAME_CHARS`] characters, no
/// control or bidirectional-override characters (so that its JSON form is at most 4 bytes a character, which bounds every
/// answer's size).
pub fn require_name(field: &str, value: &str) -> Result<(), DomainError> {
    require_text(field, value)?;
    if value.chars().count() > MAX_NAME_CHARS {
        return Err(DomainError::validation(
            field,
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    Ok(())
}

/// Checks the number of line items: 1 to [`MAX_LINE_ITEMS`].
pub fn require_line_count(field: &str, count: usize) -> Result<(), DomainError> {
    if count == 0 {
        return Err(DomainError::validation(
            field,
            "must hold at least one line item",
        ));
    }
    if count > MAX_LINE_ITEMS {
        return Err(DomainError::validation(
            field,
            format!("must hold at most {MAX_LINE_ITEMS} line items, not {count}"),
        ));
    }
    Ok(())
}

pub(super) fn validate_create(command: &CreateOrder) -> Result<(), DomainError> {
    require_id("consumerId", &command.consumer_id)?;
    require_id("restaurantId", &command.restaurant_id)?;
    require_name("restaurantName", &command.restaurant_name)?;
    require_line_count("lineItems", command.line_items.len())?;
    let mut seen = HashSet::new();
    for (index, line) in command.line_items.iter().enumerate() {
        require_id(
            &format!("lineItems[{index}].menuItemId"),
            &line.menu_item_id,
        )?;
        require_name(&format!("lineItems[{index}].name"), &line.name)?;
        if line.quantity == 0 {
            return Err(DomainError::validation(
                format!("lineItems[{index}].quantity"),
                "must be at least 1",
            ));
        }
        if !seen.insert(line.menu_item_id.as_str()) {
            return Err(DomainError::validation(
                format!("lineItems[{index}].menuItemId"),
                "appears twice",
            ));
        }
    }
    let address = &command.delivery_address;
    require_name("deliveryAddress.street1", &address.street1)?;
    if let Some(street2) = &address.street2
        && !street2.is_empty()
    {
        require_name("deliveryAddress.street2", street2)?;
    }
    require_name("deliveryAddress.city", &address.city)?;
    require_name("deliveryAddress.state", &address.state)?;
    require_name("deliveryAddress.zip", &address.zip)?;
    Ok(())
}
