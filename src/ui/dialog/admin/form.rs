//! What every fabric dialog shares: parsing what was typed, errors kept per field label (the
//! labels `validate_object` uses), and a labelled field with its errors right under it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use iced::widget::{Column, column, container, radio, row, text, text_input};
use iced::{Alignment, Element, Length, Theme};
use ipnet::IpNet;

use crate::fabric::model::Fabric;
use crate::fabric::validate::{Field, ValidationError};
use crate::ui::widget::style::{self, Tone};

/// Width of the label column of every dialog.
pub const LABEL_WIDTH: f32 = 150.0;
/// Errors that belong to no field of the dialog.
pub const GENERAL: &str = "";

/// Problems by field label; a field shows its own, the rest go to the bottom of the dialog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(BTreeMap<&'static str, Vec<String>>);

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        let message = message.into();
        let list = self.0.entry(field).or_default();
        if !list.contains(&message) {
            list.push(message);
        }
    }

    pub fn get(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Vec::is_empty)
    }

    pub fn has(&self, field: &str) -> bool {
        !self.get(field).is_empty()
    }

    /// Validation problems placed at their field when the dialog shows it, else at the bottom.
    pub fn add_validation(&mut self, errors: &[ValidationError], fields: &[Field]) {
        for e in errors {
            let field = if fields.contains(&e.field) {
                e.field.label()
            } else {
                GENERAL
            };
            self.add(field, e.message.clone());
        }
    }

    /// Every message, field by field, for a summary line or a test.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &String)> {
        self.0
            .iter()
            .flat_map(|(f, list)| list.iter().map(move |m| (*f, m)))
    }
}

/// A required address: "Range start 10.0.0.300 is not an IP address. …".
pub fn parse_ip(field: &str, input: &str) -> Result<IpAddr, String> {
    let t = input.trim();
    if t.is_empty() {
        return Err(format!("{field} is empty. Type an IPv4 or IPv6 address."));
    }
    t.parse().map_err(|_| {
        format!("{field} \"{t}\" is not an IP address. Type an IPv4 address such as 10.0.0.10 or an IPv6 address such as 2001:db8::10.")
    })
}

/// Addresses separated by commas, semicolons or spaces; empty is an empty list.
pub fn parse_ip_list(field: &str, input: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for item in split_list(input) {
        match item.parse::<IpAddr>() {
            Ok(a) => out.push(a),
            Err(_) => bad.push(format!("\"{item}\"")),
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(format!(
            "{field}: {} {} not an IP address. Separate addresses with commas, e.g. 10.0.0.53, 10.0.0.54.",
            bad.join(", "),
            if bad.len() == 1 { "is" } else { "are" }
        ))
    }
}

/// A subnet in CIDR notation, e.g. 10.1.0.0/24.
pub fn parse_cidr(field: &str, input: &str) -> Result<IpNet, String> {
    let t = input.trim();
    if t.is_empty() {
        return Err(format!(
            "{field} is empty. Type a subnet in CIDR notation, e.g. 10.1.0.0/24."
        ));
    }
    t.parse().map_err(|_| {
        if t.contains('/') {
            format!("{field} \"{t}\" is not a subnet. Type an address and a prefix length, e.g. 10.1.0.0/24 or 2001:db8::/64.")
        } else {
            format!("{field} \"{t}\" has no prefix length. Add one, e.g. {t}/24.")
        }
    })
}

/// A whole number within `range`.
pub fn parse_number(field: &str, input: &str, min: u32, max: u32) -> Result<u32, String> {
    let t = input.trim();
    match t.parse::<u32>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{field} \"{t}\" is not a number from {min} to {max}."
        )),
    }
}

/// Words separated by commas, semicolons or spaces.
pub fn split_list(input: &str) -> impl Iterator<Item = &str> {
    input
        .split([',', ';', ' ', '\n', '\t'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

pub fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Red error lines under a field.
pub fn error_lines<'a, M: 'a>(errors: &[String]) -> Element<'a, M> {
    column(errors.iter().map(|e| {
        text(e.clone())
            .size(style::SMALL)
            .style(|theme: &Theme| text::Style {
                color: Some(style::tone_color(theme, Tone::Error)),
            })
            .into()
    }))
    .spacing(2)
    .into()
}

/// Label, input, and the field's errors right under the input.
pub fn field<'a, M: 'a>(
    label: &'a str,
    input: impl Into<Element<'a, M>>,
    errors: &[String],
) -> Element<'a, M> {
    let mut right = column![input.into()].spacing(3).width(Length::Fill);
    if !errors.is_empty() {
        right = right.push(error_lines(errors));
    }
    row![
        container(text(format!("{label}:")).size(style::TEXT))
            .width(LABEL_WIDTH)
            .padding([6, 0]),
        right,
    ]
    .spacing(8)
    .align_y(Alignment::Start)
    .into()
}

/// A labelled text box; its border turns red while the field has errors.
pub fn text_field<'a, M: Clone + 'a>(
    label: &'static str,
    id: &'static str,
    placeholder: &str,
    value: &str,
    on_input: impl Fn(String) -> M + 'a,
    errors: &FieldErrors,
) -> Element<'a, M> {
    field(
        label,
        input(id, placeholder, value, on_input, errors.has(label)),
        errors.get(label),
    )
}

/// What was typed in a text box is kept; the answer names the field that changed.
pub fn typed(value: &mut String, typed: String, label: &'static str) -> &'static str {
    *value = typed;
    label
}

/// A choice the object cannot do without. When it is missing, the field says
/// "<Field> is not chosen. <advice>".
pub fn required<T>(
    chosen: Option<T>,
    errors: &mut FieldErrors,
    label: &'static str,
    advice: &str,
) -> Option<T> {
    if chosen.is_none() {
        errors.add(label, format!("{label} is not chosen. {advice}"));
    }
    chosen
}

/// Options one a line as radio buttons; `id` names each line (by its index) for Tab and tests.
pub fn radio_column<'a, T: Copy + Eq + 'a, M: Clone + 'a>(
    options: &[T],
    label: fn(T) -> &'static str,
    selected: T,
    on_select: fn(T) -> M,
    id: fn(usize) -> String,
) -> Element<'a, M> {
    column(options.iter().enumerate().map(|(n, option)| {
        container(
            radio(label(*option), *option, Some(selected), on_select)
                .text_size(style::TEXT)
                .size(14),
        )
        .id(id(n))
        .into()
    }))
    .spacing(6)
    .into()
}

/// A pick list of objects in the dialog style, in a container `id` names.
pub fn choice_list<'a, M: Clone + 'a>(
    id: &'static str,
    choices: Vec<Choice>,
    chosen: Option<crate::fabric::model::Id>,
    on_select: impl Fn(Choice) -> M + 'a,
    placeholder: Option<&'static str>,
) -> Element<'a, M> {
    let selected = chosen.and_then(|c| choices.iter().find(|o| o.id == c).cloned());
    let mut list = iced::widget::pick_list(choices, selected, on_select);
    if let Some(placeholder) = placeholder {
        list = list.placeholder(placeholder);
    }
    container(
        list.text_size(style::TEXT)
            .padding(5)
            .style(pick_style)
            .width(Length::Fill),
    )
    .id(id)
    .into()
}

/// The "Logical network" field of the objects that belong to one; `id` names its list.
pub fn logical_network_field<'a, M: Clone + 'a>(
    id: &'static str,
    fabric: &Fabric,
    chosen: Option<crate::fabric::model::Id>,
    on_select: impl Fn(Choice) -> M + 'a,
    errors: &FieldErrors,
) -> Element<'a, M> {
    field(
        "Logical network",
        choice_list(
            id,
            logical_network_choices(fabric),
            chosen,
            on_select,
            Some("Choose a logical network"),
        ),
        errors.get("Logical network"),
    )
}

/// The fabric's logical networks as choices, by name.
pub fn logical_network_choices(fabric: &Fabric) -> Vec<Choice> {
    Choice::sorted(
        fabric
            .logical_networks
            .values()
            .map(|l| (l.id, l.name.clone())),
    )
}

/// Pick lists in the text boxes' colours, so a dialog's fields look alike.
pub fn pick_style(
    theme: &Theme,
    status: iced::widget::pick_list::Status,
) -> iced::widget::pick_list::Style {
    let base = iced::widget::pick_list::default(theme, status);
    let input = style::text_input_style(theme, iced::widget::text_input::Status::Active);
    iced::widget::pick_list::Style {
        background: iced::Background::Color(style::pane_background(theme)),
        border: match status {
            iced::widget::pick_list::Status::Active => input.border,
            _ => base.border.rounded(3),
        },
        ..base
    }
}

/// A small button of an editable list: "Remove" at the end of a row (`padding` [3, 8]) or
/// "Add ..." under the rows ([3, 10]).
pub fn list_button<'a, M: Clone + 'a>(
    label: &'static str,
    padding: [u16; 2],
    on_press: M,
) -> iced::widget::Button<'a, M> {
    iced::widget::button(text(label).size(style::SMALL))
        .padding(padding)
        .style(style::secondary)
        .on_press(on_press)
}

/// Changes row `i` of an editable list, if there is one.
pub fn edit_row<T>(rows: &mut [T], i: usize, edit: impl FnOnce(&mut T)) {
    if let Some(row) = rows.get_mut(i) {
        edit(row);
    }
}

/// Does an error message speak of this exact token (a subnet or address as typed)?
pub fn mentions(message: &str, token: &str) -> bool {
    let token = token.trim();
    if token.is_empty() {
        return false;
    }
    let part_of_token = |c: char| c.is_ascii_alphanumeric() || matches!(c, '/' | ':' | '.');
    message.match_indices(token).any(|(at, _)| {
        let rest = &message[at + token.len()..];
        let mut after = rest.chars();
        let continues = match after.next() {
            // A full stop ends the sentence; a dot followed by more of an address does not.
            Some('.') => after.next().is_some_and(|c| c.is_ascii_alphanumeric()),
            Some(c) => part_of_token(c),
            None => false,
        };
        let before = message[..at].chars().next_back();
        !continues && !before.is_some_and(part_of_token)
    })
}

/// The errors of an editable list's fields, each shown under the rows whose subnet it names;
/// what no row names stays with the list as a whole.
pub struct RowErrors {
    all: Vec<String>,
    shown: Vec<String>,
}

impl RowErrors {
    pub fn new(errors: &FieldErrors, fields: &[&str]) -> Self {
        RowErrors {
            all: fields
                .iter()
                .flat_map(|f| errors.get(f).iter())
                .cloned()
                .collect(),
            shown: Vec::new(),
        }
    }

    /// Adds a row to `list` and the errors that name `token` right under it; `line` builds the
    /// row from those errors (to mark its boxes).
    pub fn push_row<'a, M: 'a>(
        &mut self,
        list: Column<'a, M>,
        token: &str,
        line: impl FnOnce(&[String]) -> Element<'a, M>,
    ) -> Column<'a, M> {
        let mine: Vec<String> = self
            .all
            .iter()
            .filter(|m| mentions(m, token))
            .cloned()
            .collect();
        let mut list = list.push(line(&mine));
        if !mine.is_empty() {
            list = list.push(error_lines(&mine));
        }
        self.shown.extend(mine);
        list
    }

    /// The errors no row named, for under the list.
    pub fn rest(&self) -> Vec<String> {
        self.all
            .iter()
            .filter(|m| !self.shown.contains(m))
            .cloned()
            .collect()
    }
}

/// Removes row `i` of an editable list, if there is one.
pub fn remove_row<T>(rows: &mut Vec<T>, i: usize) {
    if i < rows.len() {
        rows.remove(i);
    }
}

/// A text box in the dialog style; `id` makes it reachable by Tab and by tests.
pub fn input<'a, M: Clone + 'a>(
    id: &'static str,
    placeholder: &str,
    value: &str,
    on_input: impl Fn(String) -> M + 'a,
    invalid: bool,
) -> Element<'a, M> {
    input_dyn(id, placeholder, value, on_input, invalid)
}

/// A text box of an editable list's row, `width` wide.
pub fn row_input<'a, M: Clone + 'a>(
    id: String,
    placeholder: &str,
    value: &str,
    on_input: impl Fn(String) -> M + 'a,
    invalid: bool,
    width: Length,
) -> Element<'a, M> {
    container(input_dyn(id, placeholder, value, on_input, invalid))
        .width(width)
        .into()
}

/// A text box whose id is made at run time (rows of an editable list).
pub fn input_dyn<'a, M: Clone + 'a>(
    id: impl Into<iced::widget::Id>,
    placeholder: &str,
    value: &str,
    on_input: impl Fn(String) -> M + 'a,
    invalid: bool,
) -> Element<'a, M> {
    text_input(placeholder, value)
        .id(id)
        .on_input(on_input)
        .padding(5)
        .size(style::TEXT)
        .style(move |theme: &Theme, status| {
            let base = style::text_input_style(theme, status);
            if invalid {
                text_input::Style {
                    border: base.border.color(style::tone_color(theme, Tone::Error)),
                    ..base
                }
            } else {
                base
            }
        })
        .into()
}

/// An object offered in a pick list: shown by its label, chosen by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub id: crate::fabric::model::Id,
    pub label: String,
}

impl Choice {
    /// Objects as choices by (id, label), in the order a person reads them: by label, case
    /// ignored.
    pub fn sorted(
        objects: impl IntoIterator<Item = (crate::fabric::model::Id, String)>,
    ) -> Vec<Choice> {
        let mut out: Vec<Choice> = objects
            .into_iter()
            .map(|(id, label)| Choice { id, label })
            .collect();
        out.sort_by_key(|c| c.label.to_lowercase());
        out
    }
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.label)
    }
}

/// Which fields show their errors: those the person has changed, and all of them once OK was
/// pressed, so a fresh dialog does not open covered in red.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shown {
    touched: std::collections::BTreeSet<&'static str>,
    all: bool,
}

impl Shown {
    pub fn touch(&mut self, field: &'static str) {
        self.touched.insert(field);
    }

    pub fn reveal_all(&mut self) {
        self.all = true;
    }

    pub fn visible(&self, errors: &FieldErrors) -> FieldErrors {
        if self.all {
            return errors.clone();
        }
        let mut out = FieldErrors::default();
        for (field, message) in errors.all() {
            if field != GENERAL && self.touched.contains(field) {
                out.add(field, message.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_values_parse_or_say_why_not() {
        assert_eq!(
            parse_ip("Range start", " 10.0.0.1 ").unwrap().to_string(),
            "10.0.0.1"
        );
        let e = parse_ip("Range start", "10.0.0.300").unwrap_err();
        assert!(
            e.starts_with("Range start \"10.0.0.300\" is not an IP address"),
            "{e}"
        );
        assert!(parse_ip("Range end", "").unwrap_err().contains("empty"));
        assert_eq!(
            parse_ip_list("DNS servers", "10.0.0.53, 10.0.0.54;2001:db8::1")
                .unwrap()
                .len(),
            3
        );
        let e = parse_ip_list("DNS servers", "10.0.0.53, dns1").unwrap_err();
        assert!(e.contains("\"dns1\" is not an IP address"), "{e}");
        assert!(parse_ip_list("WINS servers", "  ").unwrap().is_empty());
        assert!(
            parse_cidr("Subnet", "10.1.0.0")
                .unwrap_err()
                .contains("no prefix length")
        );
        assert!(
            parse_cidr("Subnet", "10.1.0.0/33")
                .unwrap_err()
                .contains("is not a subnet")
        );
        assert_eq!(
            parse_cidr("Subnet", "10.1.0.0/24").unwrap().to_string(),
            "10.1.0.0/24"
        );
        assert_eq!(parse_number("VLAN", "4094", 0, 4094), Ok(4094));
        assert!(
            parse_number("VLAN", "4095", 0, 4094)
                .unwrap_err()
                .contains("from 0 to 4094")
        );
    }

    #[test]
    fn validation_errors_land_on_their_field() {
        use crate::fabric::model::ObjectKind;
        use crate::fabric::validate::Rule;
        let e = |field: Field| ValidationError {
            kind: ObjectKind::IpPool,
            object: uuid::Uuid::nil(),
            name: "p".into(),
            field,
            message: format!("{field} is wrong."),
            rule: Rule::PoolOutsideSubnet,
        };
        let mut errors = FieldErrors::default();
        errors.add_validation(
            &[e(Field::RangeEnd), e(Field::Parent)],
            &[Field::Name, Field::RangeEnd],
        );
        assert_eq!(errors.get("Range end"), ["Range end is wrong.".to_string()]);
        assert_eq!(errors.get(GENERAL), ["Parent is wrong.".to_string()]);
        assert!(errors.get("Name").is_empty());
    }
}
