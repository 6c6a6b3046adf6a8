//! HTML built by appending: markup only from string literals, everything
//! else escaped.
//!
//! [`Html::raw`] takes `&'static str` only, so the markup of a page is
//! what the source code says; every value that comes from a request, the
//! store or the policy goes through [`Html::text`], which escapes the five
//! characters that could end a text node or a double-quoted attribute.
//! Every attribute value in the UI is double-quoted, so the one escape
//! serves both. There is no way to put a dynamic string into a page
//! unescaped.

use std::fmt::Write as _;

/// A page or a fragment of one.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    /// An empty fragment.
    pub fn new() -> Self {
        Self(String::with_capacity(4096))
    }

    /// Trusted markup from the source code.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// A value, escaped for a text node or a double-quoted attribute.
    pub fn text(&mut self, value: &str) -> &mut Self {
        for character in value.chars() {
            match character {
                '&' => self.0.push_str("&amp;"),
                '<' => self.0.push_str("&lt;"),
                '>' => self.0.push_str("&gt;"),
                '"' => self.0.push_str("&quot;"),
                '\'' => self.0.push_str("&#39;"),
                other => self.0.push(other),
            }
        }
        self
    }

    /// A number (nothing to escape).
    pub fn number(&mut self, value: i64) -> &mut Self {
        let _ = write!(self.0, "{value}");
        self
    }

    /// Appends a fragment built elsewhere (itself built by these rules).
    pub fn append(&mut self, fragment: &Html) -> &mut Self {
        self.0.push_str(&fragment.0);
        self
    }

    /// The markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The markup, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped_markup_is_not() {
        let mut html = Html::new();
        html.raw("<p title=\"")
            .text("\"><script>alert('x')</script>&")
            .raw("\">")
            .text("<b>")
            .raw("</p>");
        assert_eq!(
            html.as_str(),
            "<p title=\"&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;\">&lt;b&gt;</p>"
        );
    }

    #[test]
    fn numbers_and_fragments() {
        let mut inner = Html::new();
        inner.text("a<b");
        let mut outer = Html::new();
        outer.raw("<i>").append(&inner).raw("</i>").number(-42);
        assert_eq!(outer.into_string(), "<i>a&lt;b</i>-42");
    }
}
