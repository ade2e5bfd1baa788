//! Splitting a byte stream into lines with a length limit: an over-long line is counted
//! and skipped up to its newline, and the lines after it are read normally (upstream
//! drops the rest of the connection).

use memchr::memchr;

use crate::pipeline::Worker;

/// A growable buffer of bytes read but not yet split into lines.
#[derive(Debug)]
pub(super) struct LineBuffer {
    buffer: Vec<u8>,
    filled: usize,
    max_line: usize,
    /// Inside an over-long line: skip to the next newline.
    skipping: bool,
}

const INITIAL: usize = 16 * 1024;

impl LineBuffer {
    pub(super) fn new(max_line: usize) -> Self {
        Self {
            buffer: vec![0; INITIAL.min(max_line + 1).max(512)],
            filled: 0,
            max_line,
            skipping: false,
        }
    }

    /// Where the next read goes.
    pub(super) fn spare(&mut self) -> &mut [u8] {
        &mut self.buffer[self.filled..]
    }

    /// Processes `read` new bytes: every complete line goes to `worker`. Returns how many
    /// lines were completed (an over-long line skipped to its end counts too).
    pub(super) fn consume(&mut self, read: usize, worker: &mut Worker) -> usize {
        let end = self.filled + read;
        let mut start = 0;
        // New bytes are searched only from where the previous read ended.
        let mut search = self.filled;
        let mut lines = 0;
        while let Some(offset) = memchr(b'\n', &self.buffer[search..end]) {
            let newline = search + offset;
            lines += 1;
            if self.skipping {
                self.skipping = false;
            } else {
                worker.line(&self.buffer[start..newline]);
            }
            start = newline + 1;
            search = start;
        }
        self.buffer.copy_within(start..end, 0);
        self.filled = end - start;
        if self.skipping {
            self.filled = 0;
        } else if self.filled > self.max_line {
            worker.too_long(&self.buffer[..self.filled.min(200)]);
            self.skipping = true;
            self.filled = 0;
        } else if self.filled == self.buffer.len() {
            let grown = (self.buffer.len() * 2).min(self.max_line + 1);
            self.buffer.resize(grown, 0);
        }
        lines
    }

    /// At end of stream: a last line without a newline is still a line.
    pub(super) fn finish(&mut self, worker: &mut Worker) {
        if self.filled > 0 && !self.skipping {
            worker.line(&self.buffer[..self.filled]);
        }
        self.filled = 0;
    }
}

/// Splits one datagram into lines (the last may lack its newline).
pub(super) fn datagram(bytes: &[u8], max_line: usize, worker: &mut Worker) {
    if bytes.is_empty() {
        return;
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    for line in body.split(|&b| b == b'\n') {
        if line.len() > max_line {
            worker.too_long(&line[..line.len().min(200)]);
        } else {
            worker.line(line);
        }
    }
}
