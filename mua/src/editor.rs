//! Running the user's editor ($VISUAL, else $EDITOR, else `vi`) on a
//! temporary file, for message bodies and whole drafts.

use crate::error::{MuaError, Result};
use std::process::Command;

/// Opens `initial` in the editor and returns the edited text.
///
/// # Errors
/// `Usage` if the editor cannot be started or exits with failure.
pub fn edit(initial: &str) -> Result<String> {
    let editor = std::env::var("VISUAL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| {
            std::env::var("EDITOR")
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| "vi".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let path = std::env::temp_dir().join(format!("mua-{}-{nanos}.eml", std::process::id()));
    std::fs::write(&path, initial)
        .map_err(|e| MuaError::Usage(format!("cannot write {}: {e}", path.display())))?;
    // Through sh so EDITOR may carry arguments ("code --wait").
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("mua-editor")
        .arg(&path)
        .status();
    let text = std::fs::read_to_string(&path);
    let _ = std::fs::remove_file(&path);
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => return Err(MuaError::Usage(format!("editor {editor:?} failed ({s})"))),
        Err(e) => {
            return Err(MuaError::Usage(format!(
                "cannot run editor {editor:?}: {e}"
            )))
        }
    }
    text.map_err(|e| MuaError::Usage(format!("cannot read back the draft: {e}")))
}
