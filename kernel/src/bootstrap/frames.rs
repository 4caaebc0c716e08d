//! Frame selection from unlabelled videos, the paper's first step of weak supervision. The
//! paper scores motion with optical flow and keeps the top K_f frames at least I_f apart. Our
//! cheap flow proxy: frames are average-pooled into cells (so sub-pixel camera shake blurs
//! away) and divided by their mean brightness (so light flicker cancels); a transition's motion
//! is the number of cells whose colour changes. Runs of motion (short pauses bridged) are the
//! candidate events; the K_f strongest, at least I_f frames apart, each give the pair (still
//! frame before the run, still frame after it).

use image::RgbImage;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameSelection {
    /// K_f: motion events (pairs) kept per video (paper: 6).
    pub keep: usize,
    /// I_f: minimum distance in frames between the peaks of kept events (paper: 20 at video
    /// frame rates; the embedded world's actions start 16 frames apart).
    pub gap: usize,
    /// Side of the square cells frames are pooled into, in pixels.
    pub pool: u32,
    /// A cell changed when its mean absolute channel change (relative to the frame's mean
    /// brightness) exceeds this.
    pub cell_threshold: f32,
    /// A transition is motion when at least this many cells changed.
    pub min_cells: usize,
    /// Still transitions inside one event that are bridged over.
    pub bridge: usize,
    /// Hysteresis: `min_cells` finds motion; a run then grows over neighbouring transitions
    /// with at least this many changed cells, so a pair starts and ends where the motion does
    /// rather than where it is strongest.
    #[serde(default = "default_low_cells")]
    pub low_cells: usize,
}

fn default_low_cells() -> usize {
    1
}

impl Default for FrameSelection {
    fn default() -> Self {
        FrameSelection {
            keep: 6,
            gap: 12,
            pool: 4,
            cell_threshold: 0.12,
            min_cells: 4,
            bridge: 1,
            low_cells: default_low_cells(),
        }
    }
}

/// A (frame, later frame) pair of one video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FramePair {
    pub before: usize,
    pub after: usize,
}

/// A frame pooled into `pool`-pixel cells, divided by its mean.
fn cells(img: &RgbImage, pool: u32) -> Vec<[f32; 3]> {
    let (w, h) = img.dimensions();
    let p = pool.max(1);
    let (cw, ch) = (w.div_ceil(p), h.div_ceil(p));
    let mut out = vec![[0f32; 3]; (cw * ch) as usize];
    let mut count = vec![0f32; out.len()];
    for (x, y, px) in img.enumerate_pixels() {
        let i = ((y / p) * cw + x / p) as usize;
        for (acc, &v) in out[i].iter_mut().zip(&px.0) {
            *acc += v as f32 / 255.0;
        }
        count[i] += 1.0;
    }
    let mut total = 0.0;
    for (cell, n) in out.iter_mut().zip(&count) {
        for v in cell.iter_mut() {
            *v /= n;
            total += *v;
        }
    }
    let mean = (total / (3 * out.len()) as f32).max(1e-3);
    for cell in out.iter_mut() {
        for v in cell.iter_mut() {
            *v /= mean;
        }
    }
    out
}

/// Motion of every transition `t -> t + 1`: the number of cells that changed.
pub fn motion_profile(frames: &[RgbImage], cfg: &FrameSelection) -> Vec<usize> {
    let pooled: Vec<Vec<[f32; 3]>> = frames.iter().map(|f| cells(f, cfg.pool)).collect();
    pooled
        .windows(2)
        .map(|w| {
            w[0].iter()
                .zip(&w[1])
                .filter(|(a, b)| {
                    (0..3).map(|c| (a[c] - b[c]).abs()).sum::<f32>() / 3.0 > cfg.cell_threshold
                })
                .count()
        })
        .collect()
}

/// The pairs of a video: runs of motion (pauses of up to `bridge` still transitions bridged),
/// the `keep` strongest (by total motion) whose peaks are at least `gap` apart, in time order.
pub fn select_pairs(frames: &[RgbImage], cfg: &FrameSelection) -> Vec<FramePair> {
    let m = motion_profile(frames, cfg);
    // Runs of moving transitions [first, last + 1).
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (t, &v) in m.iter().enumerate() {
        if v < cfg.min_cells.max(1) {
            continue;
        }
        match runs.last_mut() {
            Some(r) if t - r.1 <= cfg.bridge => r.1 = t + 1,
            _ => runs.push((t, t + 1)),
        }
    }
    // Grow each run while the motion lasts, then merge runs that now touch.
    let low = cfg.low_cells.clamp(1, cfg.min_cells.max(1));
    for r in runs.iter_mut() {
        while r.0 > 0 && m[r.0 - 1] >= low {
            r.0 -= 1;
        }
        while r.1 < m.len() && m[r.1] >= low {
            r.1 += 1;
        }
    }
    let mut merged: Vec<(usize, usize)> = Vec::with_capacity(runs.len());
    for r in runs {
        match merged.last_mut() {
            Some(p) if r.0 <= p.1 + cfg.bridge => p.1 = p.1.max(r.1),
            _ => merged.push(r),
        }
    }
    let mut runs = merged;
    let strength = |r: &(usize, usize)| m[r.0..r.1].iter().sum::<usize>();
    let peak = |r: &(usize, usize)| {
        (r.0..r.1)
            .max_by_key(|&t| (m[t], usize::MAX - t))
            .unwrap_or(r.0)
    };
    runs.sort_by_key(|r| (usize::MAX - strength(r), r.0));
    let mut kept: Vec<(usize, usize)> = Vec::new();
    for r in runs {
        if kept.len() == cfg.keep {
            break;
        }
        if kept.iter().all(|k| peak(k).abs_diff(peak(&r)) >= cfg.gap) {
            kept.push(r);
        }
    }
    kept.sort_unstable();
    kept.into_iter()
        .map(|(first, end)| FramePair {
            before: first,
            after: end,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 32x32 video: a 8x8 white square slides right between frames 3 and 7, still otherwise.
    fn sliding_square() -> Vec<RgbImage> {
        let xs = [0, 0, 0, 0, 4, 8, 12, 16, 16, 16, 16];
        xs.iter()
            .map(|&x0| {
                RgbImage::from_fn(32, 32, |x, y| {
                    if (x0..x0 + 8).contains(&x) && (8..16).contains(&y) {
                        image::Rgb([255, 255, 255])
                    } else {
                        image::Rgb([20, 20, 20])
                    }
                })
            })
            .collect()
    }

    fn cfg() -> FrameSelection {
        FrameSelection {
            gap: 4,
            ..Default::default()
        }
    }

    #[test]
    fn still_frames_have_no_motion() {
        let v = sliding_square();
        let m = motion_profile(&v, &cfg());
        assert_eq!(m.len(), v.len() - 1);
        assert_eq!(&m[..3], &[0, 0, 0]);
        assert!(m[3..7].iter().all(|&x| x >= 3), "{m:?}");
        assert_eq!(&m[7..], &[0, 0, 0]);
    }

    #[test]
    fn brightness_flicker_is_not_motion() {
        let v = sliding_square();
        let dimmer = RgbImage::from_fn(32, 32, |x, y| {
            image::Rgb(v[0].get_pixel(x, y).0.map(|c| (c as f32 * 0.9) as u8))
        });
        assert_eq!(motion_profile(&[v[0].clone(), dimmer], &cfg()), vec![0]);
    }

    #[test]
    fn picks_the_pair_around_the_motion() {
        let pairs = select_pairs(&sliding_square(), &cfg());
        assert_eq!(
            pairs,
            vec![FramePair {
                before: 3,
                after: 7
            }]
        );
    }

    #[test]
    fn a_pair_spans_the_weak_start_of_a_motion_too() {
        // A 2x2 dot hops one cell per frame (weak motion, frames 2 -> 5), then an 8x8 square
        // slides 4 px per frame (strong motion, 5 -> 8); still before and after.
        let dot = [0, 0, 0, 4, 8, 12, 12, 12, 12, 12, 12];
        let square = [0, 0, 0, 0, 0, 0, 4, 8, 12, 12, 12];
        let frames: Vec<RgbImage> = (0..dot.len())
            .map(|t| {
                RgbImage::from_fn(32, 32, |x, y| {
                    let in_dot = (dot[t]..dot[t] + 2).contains(&x) && (24..26).contains(&y);
                    let in_square = (square[t]..square[t] + 8).contains(&x) && (8..16).contains(&y);
                    if in_dot || in_square {
                        image::Rgb([255, 255, 255])
                    } else {
                        image::Rgb([20, 20, 20])
                    }
                })
            })
            .collect();
        let m = motion_profile(&frames, &cfg());
        assert!(m[2..5].iter().all(|&v| (1..4).contains(&v)), "weak: {m:?}");
        let pair = FramePair {
            before: 2,
            after: 8,
        };
        assert_eq!(select_pairs(&frames, &cfg()), vec![pair]);
        // Without hysteresis the pair starts where the motion became strong.
        let strict = FrameSelection {
            low_cells: 4,
            ..cfg()
        };
        assert_eq!(select_pairs(&frames, &strict)[0].before, 5);
    }

    #[test]
    fn keeps_at_most_k_frames_a_gap_apart() {
        // The slide, then back again: two pairs; K = 1 keeps one; a long gap keeps one.
        let mut v = sliding_square();
        let back: Vec<RgbImage> = sliding_square().into_iter().rev().collect();
        v.extend(back[1..].iter().cloned());
        let pairs = select_pairs(&v, &cfg());
        assert_eq!(
            pairs,
            vec![
                FramePair {
                    before: 3,
                    after: 7
                },
                FramePair {
                    before: 13,
                    after: 17
                }
            ]
        );
        let one = FrameSelection { keep: 1, ..cfg() };
        assert_eq!(select_pairs(&v, &one).len(), 1);
        let far = FrameSelection { gap: 100, ..cfg() };
        assert_eq!(select_pairs(&v, &far).len(), 1);
    }
}
