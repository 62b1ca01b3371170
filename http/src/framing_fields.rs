//! The field lines that decide a message's framing and its connection's reuse
//! (Content-Length, Transfer-Encoding, Connection, Upgrade), checked the same way for a
//! request and a response but for the rules that differ, which each passes in
//! [`FramingRules`]: strict for requests, tolerant of harmless repeats for responses.

use super::error::HttpError;
use super::fields::{self, list_elements, ConnectionOptions, FieldKind};
use super::message::Version;

/// How repeated Content-Length values are judged.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LengthRepeats {
    /// One line with one value; a second line, or a list, is refused with this error (a
    /// list fails as a malformed value).
    Refused(HttpError),
    /// A list, or several lines, of one value is tolerated, as RFC 9110 §8.6 allows: it
    /// cannot be framed two ways. Values that differ are refused with this error.
    SameValue(HttpError),
}

/// The errors (and the one rule) that differ between requests and responses.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FramingRules {
    pub repeats: LengthRepeats,
    pub bad_length: HttpError,
    pub length_and_coding: HttpError,
    pub coding_in_http10: HttpError,
}

/// What those field lines said so far, folded as they arrive.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FramingSeen {
    pub content_length: Option<u64>,
    /// A Transfer-Encoding the caller has accepted so far: a Content-Length after it is
    /// refused. The caller sets it, as it judges the codings itself.
    pub coded: bool,
    pub connection: ConnectionOptions,
    pub upgrade_field: bool,
}

impl FramingSeen {
    /// Checks one complete field line of `kind` and folds in what it says. `Ok(Some(value))`
    /// for a Transfer-Encoding line that passed the checks shared by both: its codings are
    /// the caller's to judge.
    #[inline]
    pub(crate) fn check<'v>(
        &mut self,
        kind: FieldKind,
        value: &'v [u8],
        version: Version,
        rules: &FramingRules,
    ) -> Result<Option<&'v [u8]>, HttpError> {
        match kind {
            FieldKind::ContentLength => {
                if self.coded {
                    return Err(rules.length_and_coding);
                }
                match rules.repeats {
                    LengthRepeats::Refused(repeated) => {
                        if self.content_length.is_some() {
                            return Err(repeated);
                        }
                        let length = fields::parse_content_length(value).ok_or(rules.bad_length)?;
                        self.content_length = Some(length);
                    }
                    LengthRepeats::SameValue(conflicting) => {
                        for element in list_elements(value) {
                            let length =
                                fields::parse_content_length(element).ok_or(rules.bad_length)?;
                            if self.content_length.is_some_and(|earlier| earlier != length) {
                                return Err(conflicting);
                            }
                            self.content_length = Some(length);
                        }
                    }
                }
            }
            FieldKind::TransferEncoding => {
                if version == Version::Http10 {
                    return Err(rules.coding_in_http10);
                }
                if self.content_length.is_some() {
                    return Err(rules.length_and_coding);
                }
                return Ok(Some(value));
            }
            FieldKind::Connection => self.connection.add(value),
            FieldKind::Upgrade => self.upgrade_field = true,
            _ => {}
        }
        Ok(None)
    }
}
