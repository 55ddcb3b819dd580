//! Man pages and shell completions for both binaries (`--generate KIND`), made from the
//! same clap definitions as `--help`, so the packaged pages cannot drift from the code.
//!
//! Owns: rendering only. The packaging script (packaging/build.sh) decides where the
//! files go; nothing here writes outside the given writer.

use std::io::{self, Write};

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// A roff man page.
    Man,
    Bash,
    Zsh,
    Fish,
}

/// Renders `kind` for `cmd` to `out`. `section` is the man section ("8" for a daemon,
/// "1" for a user command).
pub fn write(
    kind: Generated,
    mut cmd: clap::Command,
    section: &'static str,
    out: &mut dyn Write,
) -> io::Result<()> {
    let name = cmd.get_name().to_owned();
    let shell = match kind {
        Generated::Man => return clap_mangen::Man::new(cmd).section(section).render(out),
        Generated::Bash => clap_complete::Shell::Bash,
        Generated::Zsh => clap_complete::Shell::Zsh,
        Generated::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(shell, &mut cmd, name, out);
    Ok(())
}
