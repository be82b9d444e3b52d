//! Progress bars for long work (add, push, pull, checkout): files done of total, and bytes. Drawn on stderr
//! only when it is a terminal, so scripts and `--json` output stay clean.

use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    bytes: AtomicU64,
}

impl Progress {
    /// A bar labelled `label` over `total` files. `show = false` (or a non-terminal stderr) draws nothing.
    pub fn new(label: &str, total: u64, show: bool) -> Progress {
        let bar = if show {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>9.bold} [{bar:30.cyan/blue}] {pos}/{len} files {msg} {elapsed}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        Progress {
            bar,
            bytes: AtomicU64::new(0),
        }
    }

    pub fn hidden() -> Progress {
        Progress::new("", 0, false)
    }

    /// One more file done, of `bytes` bytes.
    pub fn inc(&self, bytes: u64) {
        let total = self.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if !self.bar.is_hidden() {
            self.bar.set_message(HumanBytes(total).to_string());
        }
        self.bar.inc(1);
    }

    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
