//! Test support: feed one input to a parser in many splits (whole, growing prefixes, byte by
//! byte, pseudo-random pieces) and insist that every split gives the same answer.

use super::*;

/// A tiny deterministic generator (PCG-style LCG): no dependency, same numbers every run.
pub(crate) struct Lcg(u64);

impl Lcg {
    pub(crate) fn new(seed: u64) -> Self {
        Lcg(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// A number in `0..bound` (`bound > 0`).
    pub(crate) fn below(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize % bound
    }
}

/// Ways to cut `len` bytes into pieces: whole, bytes, and a few pseudo-random patterns.
pub(crate) fn split_patterns(len: usize) -> Vec<Vec<usize>> {
    if len == 0 {
        return vec![Vec::new()];
    }
    let mut patterns = vec![vec![len], vec![1; len]];
    for (seed, max_piece) in [2, 3, 5, 8, 13, 64].into_iter().enumerate() {
        let mut random = Lcg::new(seed as u64 + 1);
        let mut pieces = Vec::new();
        let mut left = len;
        while left > 0 {
            let piece = (random.below(max_piece) + 1).min(left);
            pieces.push(piece);
            left -= piece;
        }
        patterns.push(pieces);
    }
    patterns
}

/// Inputs longer than this skip the quadratic "fresh parse of every prefix" check (the
/// resumable parser still sees them byte by byte).
const PREFIX_CHECK_MAX_BYTES: usize = 2048;

/// Parses a request head every way and returns the (agreed) result.
pub(crate) fn request_every_way(
    input: &[u8],
    limits: &Limits,
) -> Result<Option<RequestHead>, HttpError> {
    let whole = parse_request_head(input, limits);
    let show = || String::from_utf8_lossy(input).into_owned();

    if input.len() <= PREFIX_CHECK_MAX_BYTES {
        let first_answer = (0..=input.len())
            .map(|n| (n, parse_request_head(&input[..n], limits)))
            .find(|(_, result)| !matches!(result, Ok(None)));
        match first_answer {
            Some((n, result)) => {
                assert_eq!(
                    result,
                    whole,
                    "fresh parse of a {n}-byte prefix of {:?}",
                    show()
                );
            }
            None => assert_eq!(whole, Ok(None), "{:?}", show()),
        }
    }

    for pieces in split_patterns(input.len()) {
        let mut parser = RequestParser::new(*limits);
        let mut end = 0;
        let mut answer = Ok(None);
        for piece in &pieces {
            end += piece;
            answer = parser.parse(&input[..end]).map(|head| head.cloned());
            if !matches!(answer, Ok(None)) {
                let again = parser.parse(&input[..end]).map(|head| head.cloned());
                assert_eq!(again, answer, "a finished parser changed its answer");
                break;
            }
        }
        assert_eq!(answer, whole, "pieces {pieces:?} of {:?}", show());
    }
    whole
}

/// Parses a response head every way and returns the (agreed) result.
pub(crate) fn response_every_way(
    input: &[u8],
    limits: &Limits,
    request_method: &[u8],
) -> Result<Option<ResponseHead>, HttpError> {
    let whole = parse_response_head(input, limits, request_method);
    for pieces in split_patterns(input.len()) {
        let mut parser = ResponseParser::new(*limits, request_method);
        let mut end = 0;
        let mut answer = Ok(None);
        for piece in &pieces {
            end += piece;
            answer = parser.parse(&input[..end]).map(|head| head.cloned());
            if !matches!(answer, Ok(None)) {
                break;
            }
        }
        assert_eq!(
            answer,
            whole,
            "pieces {pieces:?} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    whole
}

/// What a body decoder made of an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub data: Vec<u8>,
    /// Input bytes that belonged to the body.
    pub consumed: usize,
    pub done: bool,
    pub trailers: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Decodes a chunked body every way and returns the (agreed) result.
pub(crate) fn chunked_every_way(input: &[u8], limits: &Limits) -> Result<Decoded, HttpError> {
    body_every_way(input, || {
        BodyReader::for_request(BodyFraming::Chunked, limits)
    })
}

/// Runs any body reader over `input` every way; pieces after `done` are not fed.
pub(crate) fn body_every_way(
    input: &[u8],
    new_reader: impl Fn() -> BodyReader,
) -> Result<Decoded, HttpError> {
    let mut answers = Vec::new();
    for pieces in split_patterns(input.len()) {
        let mut reader = new_reader();
        let mut data = Vec::new();
        let mut offset = 0;
        let mut outcome = Ok((0, false));
        for &piece in &pieces {
            let slice = &input[offset..offset + piece];
            match reader.feed_into(slice, &mut data) {
                Err(error) => {
                    outcome = Err(error);
                    break;
                }
                Ok(progress) => {
                    let consumed = offset + progress.consumed;
                    outcome = Ok((consumed, progress.done));
                    if progress.done {
                        break;
                    }
                    assert_eq!(
                        progress.consumed, piece,
                        "an unfinished body left input unread"
                    );
                }
            }
            offset += piece;
        }
        let answer = outcome.map(|(consumed, done)| Decoded {
            data,
            consumed,
            done,
            trailers: reader
                .chunked()
                .map(|decoder| {
                    decoder
                        .trailers()
                        .map(|(n, v)| (n.to_vec(), v.to_vec()))
                        .collect()
                })
                .unwrap_or_default(),
        });
        answers.push((pieces, answer));
    }
    let (_, first) = answers[0].clone();
    for (pieces, answer) in &answers {
        assert_eq!(
            answer,
            &first,
            "pieces {pieces:?} of {:?}",
            String::from_utf8_lossy(input)
        );
    }
    first
}

#[test]
fn split_patterns_cover_the_input() {
    for len in [0, 1, 7, 100] {
        for pattern in split_patterns(len) {
            assert_eq!(pattern.iter().sum::<usize>(), len);
            assert!(pattern.iter().all(|&piece| piece > 0));
        }
    }
}
