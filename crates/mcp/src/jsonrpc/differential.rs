//! `parse_body` against the classifier it replaced (`reference`), over hand-picked hard cases,
//! every combination of a message's members, and a few thousand seeded random mutations: the
//! same `Ok`, or the same error code, message and id, for every input and several limits.

use super::{
    parse_body, reference, Limits, RpcError, INVALID_PARAMS, INVALID_REQUEST, PARSE_ERROR,
};
use std::collections::BTreeMap;

/// The limits every input is tried under: the default, and bounds small enough that the
/// message, its members and their contents each hit them.
const LIMITS: [Limits; 5] = [
    Limits {
        max_depth: 64,
        max_bytes: 4 * 1024 * 1024,
    },
    Limits {
        max_depth: 0,
        max_bytes: 4096,
    },
    Limits {
        max_depth: 1,
        max_bytes: 4096,
    },
    Limits {
        max_depth: 3,
        max_bytes: 4096,
    },
    Limits {
        max_depth: 64,
        max_bytes: 60,
    },
];

/// Outcomes seen, by kind, so the tests can show the corpus reaches every branch.
#[derive(Default)]
struct Tally {
    inputs: usize,
    outcomes: BTreeMap<&'static str, usize>,
}

impl Tally {
    fn compare(&mut self, input: &[u8], limits: Limits) {
        let new = parse_body(input, limits);
        let old = reference::parse_body(input, limits);
        assert_eq!(
            new,
            old,
            "input {:?} under {limits:?}",
            String::from_utf8_lossy(input)
        );
        self.inputs += 1;
        *self.outcomes.entry(outcome(&new)).or_default() += 1;
    }

    fn assert_reached(&self, kinds: &[&str]) {
        for kind in kinds {
            assert!(
                self.outcomes.get(kind).is_some_and(|&n| n > 0),
                "no {kind} in {:?}",
                self.outcomes
            );
        }
    }
}

fn outcome<T>(r: &Result<T, RpcError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(e) if e.message.starts_with("duplicate key") => "duplicate",
        Err(e) if e.message.contains("nested deeper") => "too_deep",
        Err(e) if e.message.contains("larger than") => "too_large",
        Err(e) if e.code == PARSE_ERROR => "syntax",
        Err(e) if e.code == INVALID_PARAMS => "invalid_params",
        Err(e) if e.code == INVALID_REQUEST && e.id.is_some() => "invalid_request_with_id",
        Err(_) => "invalid_request",
    }
}

const CALL: &str = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"create_issue","arguments":{"title":"hi","body":"some text"}}}"#;

/// Well-formed bodies of every kind: the mutator's seeds, and cases of their own.
fn valid() -> Vec<String> {
    [
        CALL,
        r#"{"jsonrpc":"2.0","id":"r1","method":"resources/read","params":{"uri":"file:///x"}}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"prompts/get","params":{"name":"p","arguments":{"a":"b"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"}]}}"#,
        r#"{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"no"}}"#,
        r#"{"params":{"arguments":[1,{"k":[]}],"name":"late"},"method":"tools/call","id":-3,"jsonrpc":"2.0"}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}},{"jsonrpc":"2.0","id":2,"result":null}]"#,
        r#"{"jsonrpc":"2.0","id":1.5e3,"method":"tools/list","params":[]}"#,
        "\t{ \"jsonrpc\" : \"2.0\" ,\n \"id\" : 0 , \"method\" : \"ping\" }\r\n",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `inner` wrapped in `levels` arrays or objects.
fn nest(inner: &str, levels: usize, object: bool) -> String {
    let (open, close) = if object {
        (r#"{"a":"#, "}")
    } else {
        ("[", "]")
    };
    format!("{}{inner}{}", open.repeat(levels), close.repeat(levels))
}

/// A message with `value` as the member `key` (after the members of a valid tools/call).
fn with_member(key: &str, value: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"n"}},"{key}":{value}}}"#
    )
}

/// The hard cases, written out.
fn tricky() -> Vec<String> {
    let mut out: Vec<String> = [
        // Not JSON, or not only JSON.
        "",
        " ",
        "{",
        "[",
        "]",
        "nul",
        "{nope",
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"} x"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}{}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"},"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping",}"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},]"#,
        "\u{feff}{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"pi\u{1}ng\"}",
        r#"{"jsonrpc":"2.0","id":1,"method":"\x"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"\ud800"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"\ud83d\ude00"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\u0000"}}"#,
        r#"{"jsonrpc":"2.0","id":01,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1.,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":-,"method":"ping"}"#,
        r#"{'jsonrpc':'2.0'}"#,
        r#"{jsonrpc:"2.0"}"#,
        r#"{"jsonrpc""2.0"}"#,
        r#"{1:2}"#,
        // Scalars and arrays where a message belongs.
        "null",
        "true",
        "5",
        r#""tools/call""#,
        "[]",
        " [ ] ",
        "[[]]",
        "[[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]]",
        r#"[1,{"jsonrpc":"2.0","id":1,"method":"ping"}]"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},1]"#,
        r#"[{"jsonrpc":"2.0","id":{},"method":"ping"},{"jsonrpc":"1.0","id":1}]"#,
        r#"[{"jsonrpc":"1.0","id":1},{"jsonrpc":"2.0","id":1,"method":"x","x":1,"x":2}]"#,
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/call"},{"jsonrpc":"2.0","id":"a"}]"#,
        // Several faults in one message: the order of the checks decides.
        r#"{"jsonrpc":"1.0","id":{},"method":7}"#,
        r#"{"jsonrpc":"1.0","id":"x","method":7}"#,
        r#"{"id":"x"}"#,
        r#"{"id":[],"jsonrpc":"2.0"}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":7,"params":1}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":1}"#,
        r#"{"jsonrpc":"2.0","id":5,"result":1,"params":1}"#,
        r#"{"jsonrpc":"2.0","id":5,"error":1,"method":null}"#,
        r#"{"jsonrpc":"2.0","id":5,"method":"ping","result":1}"#,
        r#"{"jsonrpc":"2.0","method":"tools/call","params":{"uri":"u"}}"#,
        r#"{"jsonrpc":"2.0","method":"resources/read","params":{"name":"n"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":{"name":"n"}}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":[{"name":"n"}]}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"id":2}"#,
        // Huge and odd numbers.
        r#"{"jsonrpc":"2.0","id":1e400,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":-1e400,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1e-400,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":18446744073709551615,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":18446744073709551616,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":-9223372036854775808,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":-9223372036854775809,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":-0,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":-0.0,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":1e400}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","x":[1e400]}"#,
        // Escaped spellings: the same key, the same value.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","na\u006de":"b"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","\u006dethod":"tools/call","params":{"name":"a"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"i\u0064":2,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","\u006a\u0073onrpc":"2.0","id":1,"method":"ping"}"#,
        r#"{"\u006a\u0073onrpc":"\u0032.0","\u0069d":"\u0031","\u006dethod":"tools\/call","\u0070arams":{"\u006eame":"\u00e9"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","x":{"a\"b":1,"a\u0022b":2}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","x":{"\/":1,"/":2}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","x":{"é":1,"\u00e9":2}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","x":{"é":1,"\u0065\u0301":2}}"#,
        // Duplicates where they matter most, and where they matter least.
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}"#,
        r#"{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":1,"result":2}"#,
        r#"{"jsonrpc":"2.0","id":1,"result":1,"error":2}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","uri":"b","uri":"c"}}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"k":1,"k":2}}}"#,
        r#"{"jsonrpc":"1.0","id":{},"method":7,"x":1,"x":1}"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","x":1,"x":"#,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping","x":1,"x":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["#,
        r#"{"id":{"a":1,"a":2},"jsonrpc":"1.0"}"#,
    ]
    .map(str::to_owned)
    .to_vec();
    // Duplicates and depth at every level of every kind of member.
    let dup = r#"{"x":1,"x":2}"#;
    let members = ["id", "jsonrpc", "method", "params", "result", "other"];
    for levels in 0..=5 {
        for object in [false, true] {
            for key in members {
                out.push(with_member(key, &nest(dup, levels, object)));
            }
            let arguments = nest(dup, levels, object);
            out.push(format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"n","arguments":{arguments}}}}}"#
            ));
            out.push(format!(
                "[{}]",
                with_member("params", &nest(dup, levels, object))
            ));
            out.push(nest(&with_member("x", "1"), levels, object));
        }
    }
    for levels in [60, 61, 62, 63, 64, 65, 66, 126, 127, 128, 129, 300] {
        for object in [false, true] {
            for key in members {
                out.push(with_member(key, &nest("1", levels, object)));
            }
            out.push(nest("1", levels, object));
            out.push(nest(&with_member("x", "1"), levels, object));
            out.push(nest("", levels, object));
        }
    }
    // Wide objects: past the inline key set, with and without a late duplicate.
    let keys: Vec<String> = (0..10_000).map(|i| format!(r#""k{i}":{i}"#)).collect();
    let wide = format!("{{{}}}", keys.join(","));
    let wide_dup = format!("{{{},\"k17\":0}}", keys.join(","));
    for key in ["params", "other"] {
        out.push(with_member(key, &wide));
        out.push(with_member(key, &wide_dup));
    }
    out
}

/// Every combination of a message's members, in two orders.
fn combinations() -> Vec<String> {
    let ids = [
        "",
        "1",
        r#""a""#,
        "null",
        "true",
        "{}",
        "[]",
        "1.5",
        "-0",
        r#""\u0031""#,
    ];
    let versions = [
        "",
        r#""2.0""#,
        r#""1.0""#,
        "2.0",
        "null",
        r#""2.\u0030""#,
        "[]",
    ];
    let methods = [
        "",
        r#""tools/call""#,
        r#""resources/read""#,
        r#""prompts/get""#,
        r#""ping""#,
        "7",
        "null",
        r#""tools\u002fcall""#,
    ];
    let params = [
        "",
        r#"{"name":"n"}"#,
        r#"{"uri":"u"}"#,
        r#"{"name":5}"#,
        "{}",
        "[]",
        "null",
        r#""s""#,
        r#"{"name":"a","uri":"b","arguments":{}}"#,
    ];
    let answers = ["", r#""result":{}"#, r#""error":{"code":1}"#];
    let mut out = Vec::new();
    for id in ids {
        for version in versions {
            for method in methods {
                for param in params {
                    for answer in answers {
                        let mut members: Vec<String> = [
                            ("id", id),
                            ("jsonrpc", version),
                            ("method", method),
                            ("params", param),
                        ]
                        .iter()
                        .filter(|(_, v)| !v.is_empty())
                        .map(|(k, v)| format!(r#""{k}":{v}"#))
                        .collect();
                        if !answer.is_empty() {
                            members.push(answer.to_owned());
                        }
                        out.push(format!("{{{}}}", members.join(",")));
                        members.reverse();
                        out.push(format!("{{{}}}", members.join(",")));
                    }
                }
            }
        }
    }
    out
}

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes the mutator splices in: JSON's punctuation, escapes, the members classification
/// reads, and values that trip the parser's bounds.
const SPLICES: [&[u8]; 22] = [
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"\\",
    b"\\u0061",
    b"\\u006e",
    br#""name":"x","#,
    br#""method":"tools/call","#,
    br#""id":{},"#,
    br#""params":"#,
    b"1e999",
    b"null",
    br#"{"x":1,"x":2}"#,
    b"[[[[[[[[",
    b" ",
    "\u{feff}".as_bytes(),
    b"\xff",
    b"\xc3\xa9",
];

/// Whole members the mutator adds to an object, so that most mutants are still JSON and reach
/// the checks after parsing: duplicates (plain and escaped), wrong types, deep values.
const MEMBERS: [&[u8]; 12] = [
    br#""name":"x","#,
    br#""n\u0061me":"y","#,
    br#""uri":"u","#,
    br#""method":"tools/call","#,
    br#""method":"resources/read","#,
    br#""id":{},"#,
    br#""id":null,"#,
    br#""jsonrpc":"1.0","#,
    br#""params":[],"#,
    br#""result":1,"#,
    br#""x":{"y":1,"y":2},"#,
    br#""a":[[[[[1]]]]],"#,
];

/// `seed` with one to three random edits: a member added after a `{` (as likely as all the
/// others together), a byte changed, a range dropped, a splice inserted, a range copied
/// elsewhere (which makes duplicate keys), or the tail cut off.
fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut out = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        let at = rng.below(out.len() + 1);
        let kind = rng.below(10);
        if kind >= 5 {
            let opens: Vec<usize> = (0..out.len()).filter(|&i| out[i] == b'{').collect();
            if !opens.is_empty() {
                let after = opens[rng.below(opens.len())] + 1;
                let member = MEMBERS[rng.below(MEMBERS.len())];
                out.splice(after..after, member.iter().copied());
            }
            continue;
        }
        match kind {
            0 if at < out.len() => out[at] = SPLICES[rng.below(SPLICES.len())][0],
            1 => {
                let end = (at + 1 + rng.below(8)).min(out.len());
                out.drain(at.min(end)..end);
            }
            2 => {
                let splice = SPLICES[rng.below(SPLICES.len())];
                out.splice(at..at, splice.iter().copied());
            }
            3 => {
                let from = rng.below(out.len());
                let end = (from + 1 + rng.below(40)).min(out.len());
                let copy = out[from..end].to_vec();
                out.splice(at..at, copy);
            }
            _ => out.truncate(at),
        }
    }
    out
}

#[test]
fn hand_picked_cases_classify_as_before() {
    let mut tally = Tally::default();
    for input in valid().iter().chain(&tricky()) {
        for limits in LIMITS {
            tally.compare(input.as_bytes(), limits);
        }
    }
    for bytes in [
        &b"\xff"[..],
        b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xc3\"}",
    ] {
        tally.compare(bytes, LIMITS[0]);
    }
    tally.assert_reached(&[
        "ok",
        "duplicate",
        "too_deep",
        "too_large",
        "syntax",
        "invalid_params",
        "invalid_request",
        "invalid_request_with_id",
    ]);
    eprintln!(
        "hand-picked: {} comparisons, {:?}",
        tally.inputs, tally.outcomes
    );
}

#[test]
fn every_combination_of_members_classifies_as_before() {
    let mut tally = Tally::default();
    for input in combinations() {
        for limits in [LIMITS[0], LIMITS[2]] {
            tally.compare(input.as_bytes(), limits);
        }
    }
    tally.assert_reached(&[
        "ok",
        "too_deep",
        "invalid_params",
        "invalid_request",
        "invalid_request_with_id",
    ]);
    eprintln!(
        "combinations: {} comparisons, {:?}",
        tally.inputs, tally.outcomes
    );
}

#[test]
fn mutated_bodies_classify_as_before() {
    let seeds: Vec<String> = valid()
        .into_iter()
        .chain(tricky().into_iter().take(90))
        .collect();
    let mut rng = Rng(0x6d63_7067_6174_6531);
    let mut tally = Tally::default();
    for _ in 0..20_000 {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed.as_bytes());
        for limits in [LIMITS[0], LIMITS[3]] {
            tally.compare(&input, limits);
        }
    }
    tally.assert_reached(&[
        "ok",
        "duplicate",
        "too_deep",
        "syntax",
        "invalid_params",
        "invalid_request",
        "invalid_request_with_id",
    ]);
    eprintln!(
        "mutated: {} comparisons, {:?}",
        tally.inputs, tally.outcomes
    );
}
