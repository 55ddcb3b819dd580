//! Every `quorate …` command that README.md and docs/*.md show in a ```sh, ```bash,
//! ```shell or ```console block parses with the real command line ([`Cli`]).
//!
//! How a line is read:
//!
//! - In ```console blocks only lines starting with `$ ` are commands; in the others,
//!   every line is (after joining `\` continuations, without `# comments`, skipping
//!   here-documents). A block whose info string says `no-check` is skipped.
//! - Lines are split into simple commands at `;`, `&&`, `||`, `|`, `&`, `$(`, `(`, `)`
//!   and backticks; leading `VAR=value`, `sudo`, `exec`, `if`, `then`, `do`, `!`,
//!   `runuser -u USER --` and `ssh HOST` are skipped. A command whose first word is then
//!   `quorate` is checked.
//! - Synopsis notation is understood: UPPERCASE words are placeholders (replaced by a
//!   sample value, [`sample`]); `[…]` is optional (every combination is checked);
//!   `A | b …` after a `quorate` command, where `b` is one of quorate's subcommand names,
//!   is an alternative that replaces the tail of `A`; a command with `…` is checked up to
//!   its subcommand path, with `--help`. Shell variables (`$n`) stand for `n1`.
//! - A synopsis alternative made only of subcommand words (`quorate ca init|issue`)
//!   passes when its path exists (`--help` is accepted there).
//! - Prose mentions count too: an inline code span starting with `quorate ` (outside
//!   fenced blocks, possibly wrapped over lines) must parse as well, except that it may
//!   leave out required arguments (`quorate drift ack NAME` names the command, not all
//!   of it). A wrong subcommand, flag or value still fails.

use std::path::{Path, PathBuf};

use clap::error::ErrorKind;
use clap::{CommandFactory as _, Parser as _};

use super::Cli;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn documents() -> Vec<PathBuf> {
    let root = repo();
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "md"))
                .collect()
        })
        .unwrap_or_default();
    docs.push(root.join("README.md"));
    docs.sort();
    docs
}

/// A fenced code block: the info string's words, the line of its first body line, and
/// its body with the fence's indentation removed.
struct Block {
    info: Vec<String>,
    line: usize,
    body: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(String, usize, Block)> = None;
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        let indent = raw.len() - trimmed.len();
        match &mut open {
            None => {
                for fence in ["```", "~~~"] {
                    if let Some(info) = trimmed.strip_prefix(fence) {
                        let info = info.trim_start_matches(fence.chars().next().unwrap_or('`'));
                        let block = Block {
                            info: info.split_whitespace().map(str::to_owned).collect(),
                            line: i + 2,
                            body: Vec::new(),
                        };
                        open = Some((fence.to_owned(), indent, block));
                        break;
                    }
                }
            }
            Some((fence, ind, block)) => {
                if trimmed.starts_with(fence.as_str())
                    && trimmed.trim_matches(|c| c == '`' || c == '~').is_empty()
                {
                    if let Some((_, _, b)) = open.take() {
                        out.push(b);
                    }
                } else {
                    let cut = raw.len().min(*ind);
                    let body = if raw.is_char_boundary(cut) && raw[..cut].trim().is_empty() {
                        &raw[cut..]
                    } else {
                        trimmed
                    };
                    block.body.push(body.to_owned());
                }
            }
        }
    }
    out
}

/// The command lines of a shell block, with their line numbers in the document.
fn shell_lines(block: &Block) -> Vec<(usize, String)> {
    let lang = block.info.first().map(String::as_str).unwrap_or("");
    if !matches!(lang, "sh" | "bash" | "shell" | "console")
        || block.info.iter().any(|w| w == "no-check")
    {
        return Vec::new();
    }
    let console = lang == "console";
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut heredoc: Option<String> = None;
    let mut continued = false;
    for (i, line) in block.body.iter().enumerate() {
        if let Some(end) = &heredoc {
            if line.trim() == end {
                heredoc = None;
            }
            continue;
        }
        let mut text = line.as_str();
        if !continued && console {
            match text.strip_prefix("$ ") {
                Some(rest) => text = rest,
                None => continue,
            }
        }
        if continued {
            if let Some((_, last)) = out.last_mut() {
                last.push(' ');
                last.push_str(text.trim());
            }
        } else {
            out.push((block.line + i, text.trim().to_owned()));
        }
        continued = text.trim_end().ends_with('\\');
        if continued && let Some((_, last)) = out.last_mut() {
            last.truncate(last.trim_end().len() - 1);
            last.truncate(last.trim_end().len());
        }
        if let Some(pos) = text.find("<<") {
            let word = text[pos + 2..]
                .trim_start_matches('-')
                .trim()
                .trim_matches(|c| c == '\'' || c == '"');
            let word: String = word
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                heredoc = Some(word);
            }
        }
    }
    out
}

/// One simple command's words, and whether a `|` came right before it.
#[derive(Debug)]
struct Simple {
    words: Vec<String>,
    after_pipe: bool,
}

/// Splits a shell line into simple commands (quotes kept together, comments dropped).
fn simple_commands(line: &str) -> Vec<Simple> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut after_pipe = false;
    let mut chars = line.chars().peekable();
    let flush_word = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for q in chars.by_ref() {
                    if q == '\'' {
                        break;
                    }
                    word.push(q);
                }
            }
            '"' => {
                in_word = true;
                while let Some(q) = chars.next() {
                    match q {
                        '"' => break,
                        '\\' => {
                            if let Some(n) = chars.next() {
                                word.push(n);
                            }
                        }
                        _ => word.push(q),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    word.push(n);
                }
            }
            '#' if !in_word => break,
            ' ' | '\t' => flush_word(&mut words, &mut word, &mut in_word),
            ';' | '&' | '|' | '(' | ')' | '`' => {
                flush_word(&mut words, &mut word, &mut in_word);
                let pipe = c == '|' && chars.peek() != Some(&'|');
                if matches!(chars.peek(), Some('|' | '&')) {
                    chars.next();
                }
                if !words.is_empty() {
                    out.push(Simple {
                        words: std::mem::take(&mut words),
                        after_pipe,
                    });
                }
                after_pipe = pipe;
            }
            '$' if chars.peek() == Some(&'(') => {
                chars.next();
                flush_word(&mut words, &mut word, &mut in_word);
                if !words.is_empty() {
                    out.push(Simple {
                        words: std::mem::take(&mut words),
                        after_pipe,
                    });
                }
                after_pipe = false;
            }
            _ => {
                in_word = true;
                word.push(c);
            }
        }
    }
    flush_word(&mut words, &mut word, &mut in_word);
    if !words.is_empty() {
        out.push(Simple { words, after_pipe });
    }
    out
}

/// The words after wrappers (`sudo`, `runuser -u U --`, `ssh HOST`, `VAR=x`…).
fn unwrap(words: &[String]) -> &[String] {
    let mut w = words;
    loop {
        match w.first().map(String::as_str) {
            Some("sudo" | "exec" | "time" | "if" | "then" | "do" | "else" | "!" | "command") => {
                w = &w[1..]
            }
            Some("runuser") => match w.iter().position(|x| x == "--") {
                Some(p) => w = &w[p + 1..],
                None => return &[],
            },
            Some("ssh") => {
                let mut i = 1;
                while w.get(i).is_some_and(|x| x.starts_with('-')) {
                    i += 1;
                }
                w = w.get(i + 1..).unwrap_or(&[]);
            }
            Some(x)
                if x.contains('=')
                    && !x.starts_with('-')
                    && x.split('=').next().is_some_and(|k| {
                        k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    }) =>
            {
                w = &w[1..]
            }
            _ => return w,
        }
    }
}

/// The sample value a synopsis placeholder stands for.
fn sample(word: &str) -> Option<&'static str> {
    let name = word.split('[').next().unwrap_or(word);
    Some(match name {
        "NODE" => "n1",
        "OLD" => "n3",
        "NEW" => "n6",
        "ADDR" => "10.0.0.14:7700",
        "HOST" => "10.0.0.11",
        "NAME" => "alice",
        "TEXT" => "why",
        "DURATION" => "1h",
        "PATH" | "FILE" | "DIR" => "/tmp/quorate-doc",
        "N" => "3",
        _ => return None,
    })
}

fn is_placeholder(word: &str) -> bool {
    let name = word.split('[').next().unwrap_or(word);
    !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c == '_')
}

fn is_ellipsis(word: &str) -> bool {
    word.contains('…') || word.contains("...")
}

/// Every concrete argument list an argument synopsis stands for (`[…]` optional), with
/// placeholders replaced. `Err` names an unknown placeholder.
fn expand(args: &[String]) -> Result<Vec<Vec<String>>, String> {
    let mut out: Vec<Vec<String>> = vec![Vec::new()];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a.starts_with('[') {
            let mut group = Vec::new();
            let mut j = i;
            loop {
                let w = args[j].trim_start_matches('[');
                let end = w.ends_with(']');
                group.push(w.trim_end_matches(']').to_owned());
                if end || j + 1 == args.len() {
                    break;
                }
                j += 1;
            }
            let inner = expand(&group)?;
            let mut next = Vec::new();
            for o in &out {
                next.push(o.clone());
                for g in &inner {
                    let mut v = o.clone();
                    v.extend(g.iter().cloned());
                    next.push(v);
                }
            }
            out = next;
            i = j + 1;
            continue;
        }
        let value = if a.starts_with('$') {
            "n1".to_owned()
        } else if is_placeholder(a) {
            sample(a)
                .ok_or_else(|| format!("unknown placeholder {a} (add it to `sample`)"))?
                .to_owned()
        } else if let Some((flag, v)) = a
            .split_once('=')
            .filter(|(f, v)| f.starts_with("--") && is_placeholder(v))
        {
            format!(
                "{flag}={}",
                sample(v).ok_or_else(|| format!("unknown placeholder {v}"))?
            )
        } else {
            a.clone()
        };
        for o in &mut out {
            o.push(value.clone());
        }
        i += 1;
    }
    Ok(out)
}

/// Every subcommand name, at any depth.
fn subcommand_names() -> Vec<String> {
    fn walk(c: &clap::Command, out: &mut Vec<String>) {
        for s in c.get_subcommands() {
            out.push(s.get_name().to_owned());
            walk(s, out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), &mut out);
    out
}

fn parse(args: &[String]) -> Result<(), clap::Error> {
    match Cli::try_parse_from(std::iter::once("quorate".to_owned()).chain(args.iter().cloned())) {
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => Ok(()),
        Err(e) => Err(e),
    }
}

/// [`parse`], accepting a command that only lacks required arguments or a subcommand.
fn parse_partial(args: &[String]) -> Result<(), clap::Error> {
    match parse(args) {
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::MissingRequiredArgument
                    | ErrorKind::MissingSubcommand
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The inline code spans of `text` outside fenced blocks that start with `quorate `,
/// whitespace collapsed, with the line each starts on.
fn inline_commands(text: &str) -> Vec<(usize, String)> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("```") || t.starts_with("~~~") {
            fenced = !fenced;
            prose.push('\n');
            continue;
        }
        if !fenced {
            prose.push_str(line);
        }
        prose.push('\n');
    }
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    let mut line = 1;
    while let Some(open) = rest.find('`') {
        line += rest[..open].matches('\n').count();
        let after = &rest[open..];
        let ticks = after.chars().take_while(|c| *c == '`').count();
        let body = &after[ticks..];
        let Some(close) = body.find(&"`".repeat(ticks)) else {
            break;
        };
        let span = &body[..close];
        if ticks == 1
            && let Some(cmd) = span.strip_prefix("quorate ")
        {
            out.push((
                line,
                format!(
                    "quorate {}",
                    cmd.split_whitespace().collect::<Vec<_>>().join(" ")
                ),
            ));
        }
        line += span.matches('\n').count();
        rest = &body[close + ticks..];
    }
    out
}

/// Checks one prose mention (see the module doc).
fn check_mention(cmd: &str) -> Result<(), String> {
    let words: Vec<String> = simple_commands(cmd)
        .into_iter()
        .next()
        .map(|c| c.words)
        .unwrap_or_default();
    let args = &words[1.min(words.len())..];
    if args.iter().any(|a| is_ellipsis(a)) {
        return check(args, true);
    }
    for variant in expand(args)? {
        parse_partial(&variant)
            .map_err(|e| format!("`quorate {}`: {}", variant.join(" "), first_line(&e)))?;
    }
    Ok(())
}

/// Checks one command's arguments (after `quorate`); `lenient`: a synopsis alternative
/// made of subcommand words only may stop before its required arguments.
fn check(args: &[String], lenient: bool) -> Result<(), String> {
    if let Some(p) = args.iter().position(|a| is_ellipsis(a)) {
        let path: Vec<String> = args[..p]
            .iter()
            .take_while(|a| !a.starts_with('-') && !is_placeholder(a) && !a.starts_with('['))
            .cloned()
            .chain(["--help".to_owned()])
            .collect();
        return parse(&path).map_err(|e| first_line(&e));
    }
    for variant in expand(args)? {
        if let Err(e) = parse(&variant) {
            let words_only = variant.iter().all(|a| !a.starts_with('-'));
            let mut with_help = variant.clone();
            with_help.push("--help".to_owned());
            if !(lenient && words_only && parse(&with_help).is_ok()) {
                return Err(format!(
                    "`quorate {}`: {}",
                    variant.join(" "),
                    first_line(&e)
                ));
            }
        }
    }
    Ok(())
}

fn first_line(e: &clap::Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_owned()
}

/// Checks every `quorate` command of one shell line; returns how many it checked.
fn check_line(line: &str, names: &[String]) -> Result<usize, String> {
    let mut checked = 0;
    let cmds = simple_commands(line);
    let mut last_quorate: Option<Vec<String>> = None;
    let synopsis = cmds
        .iter()
        .any(|c| c.after_pipe && c.words.first().is_some_and(|w| names.contains(w)));
    for c in &cmds {
        let words = unwrap(&c.words);
        if words.first().is_some_and(|w| w == "quorate") {
            let args = words[1..].to_vec();
            check(&args, synopsis)?;
            checked += 1;
            last_quorate = Some(args);
        } else if c.after_pipe
            && let Some(prev) = &last_quorate
            && c.words.first().is_some_and(|w| names.contains(w))
        {
            // A synopsis alternative: it replaces the tail of the previous command.
            let tried: Vec<Vec<String>> = (0..=prev.len())
                .map(|k| prev[..k].iter().chain(c.words.iter()).cloned().collect())
                .collect();
            if !tried.iter().any(|t| check(t, true).is_ok()) {
                return Err(format!(
                    "the alternative `{}` of `quorate {}` fits no subcommand path",
                    c.words.join(" "),
                    prev.join(" ")
                ));
            }
            checked += 1;
        } else {
            last_quorate = None;
        }
    }
    Ok(checked)
}

#[test]
fn every_quorate_command_in_the_docs_parses() {
    let names = subcommand_names();
    let mut failures = Vec::new();
    let mut checked = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap_or_default();
        let rel = doc
            .strip_prefix(repo())
            .unwrap_or(&doc)
            .display()
            .to_string();
        for block in blocks(&text) {
            for (line, cmd) in shell_lines(&block) {
                match check_line(&cmd, &names) {
                    Ok(n) => checked += n,
                    Err(e) => failures.push(format!("{rel}:{line}: {e}")),
                }
            }
        }
        for (line, cmd) in inline_commands(&text) {
            match check_mention(&cmd) {
                Ok(()) => checked += 1,
                Err(e) => failures.push(format!("{rel}:{line}: {e}")),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        checked > 20,
        "only {checked} quorate commands found in the docs"
    );
}

#[test]
fn the_checker_refuses_what_clap_refuses() {
    let names = subcommand_names();
    let ok = |l: &str| check_line(l, &names);
    assert_eq!(ok("quorate status --json"), Ok(1));
    assert_eq!(
        ok("sudo quorate drain [NODE] --reason TEXT [--for DURATION]   # x"),
        Ok(1)
    );
    assert_eq!(ok("out=$(quorate task should-run x); rc=$?"), Ok(1));
    assert_eq!(ok("quorate freeze | unfreeze"), Ok(2));
    assert_eq!(ok("quorate ca init|issue|renew|revoke …"), Ok(4));
    assert_eq!(ok("quorate status --json | jq .primary"), Ok(1));
    assert_eq!(ok("systemctl reload quorate"), Ok(0));
    assert!(ok("quorate statu").is_err());
    assert!(ok("quorate drain --reasn x").is_err());
    assert!(ok("quorate drain [NODE]").is_err(), "--reason is required");
    assert!(ok("quorate member add NODE").is_err(), "ADDR is required");
    assert!(
        ok("quorate member add NODE ADDR | remov NODE").is_ok(),
        "remov is no subcommand: a pipe"
    );
    assert!(ok("quorate member add NODE ADDR | promote NODE --bogus").is_err());
    assert!(ok("quorate ca init …").is_ok());
    assert!(ok("quorate ca innit …").is_err());
    assert!(
        ok("quorate drain WHO --reason x").is_err(),
        "unknown placeholder"
    );
}

#[test]
fn prose_mentions_are_found_and_checked() {
    let text = "Run `quorate drain\n  n2 --reason x` or `quorate drift ack NAME`.\n```sh\n`quorate nope`\n```\nand ``quorate nope`` `quorate-agent x`";
    assert_eq!(
        inline_commands(text),
        vec![
            (1, "quorate drain n2 --reason x".to_owned()),
            (2, "quorate drift ack NAME".to_owned())
        ]
    );
    assert!(
        check_mention("quorate drift ack NAME").is_ok(),
        "required args may be left out"
    );
    assert!(check_mention("quorate member").is_ok());
    assert!(check_mention("quorate membr add").is_err());
    assert!(check_mention("quorate drain --reasn x").is_err());
    assert!(check_mention("quorate ca revoke … n3").is_ok());
}

#[test]
fn blocks_and_lines_are_found() {
    let text = "x\n   ```sh\n   quorate status \\\n     --json\n   cat <<EOF\n   quorate nope\n   EOF\n   ```\n```console\n$ quorate events\nout\n```\n";
    let b = blocks(text);
    assert_eq!(b.len(), 2);
    assert_eq!(
        shell_lines(&b[0]),
        vec![
            (3, "quorate status --json".to_owned()),
            (5, "cat <<EOF".to_owned())
        ]
    );
    assert_eq!(shell_lines(&b[1]), vec![(10, "quorate events".to_owned())]);
}
