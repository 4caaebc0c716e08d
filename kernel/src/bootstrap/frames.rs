//! Frame selection from unlabelled videos, the paper's first step of weak supervision. The
//! paper scores motion with optical flow and keeps the top K_f frames at least I_f apart. Our
//! proxy, made to ignore camera shake and light flicker: frames are average-pooled into cells
//! (so sub-pixel shake blurs away) and divided by their mean brightness (so flicker cancels);
//! two frames differ by the number of cells whose colour changed. A *hold* is a stretch of at
//! least `min_still` frames that all stay within `still_cells` of its first frame; an *event* is
//! what happens between two consecutive holds, and its pair is (last frame of the first hold,
//! first frame of the next). Comparing with the hold's first frame rather than the previous
//! frame is what finds slow motion: a small object creeping a pixel a frame changes no cell
//! from one frame to the next, yet many over the whole action. Events whose two frames differ
//! in fewer than `min_cells` cells are shake, not actions; of the rest, the K_f that change the
//! most, their midpoints at least I_f apart, are kept.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// How frame pairs are chosen from a video (the paper's K_f and I_f, and what counts as motion).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrameSelection {
    /// K_f: motion events (pairs) kept per video (paper: 6).
    pub keep: usize,
    /// I_f: minimum distance in frames between the midpoints of kept events (paper: 20 at video
    /// frame rates; the embedded world's actions start 16 frames apart).
    pub gap: usize,
    /// Side of the square cells frames are pooled into, in pixels.
    pub pool: u32,
    /// A cell changed when its mean absolute channel change (relative to the frame's mean
    /// brightness) exceeds this.
    pub cell_threshold: f32,
    /// An event's two frames must differ in at least this many cells.
    pub min_cells: usize,
    /// A hold's frames differ from its first frame in at most this many cells.
    pub still_cells: usize,
    /// Frames a hold lasts at least.
    pub min_still: usize,
}

impl Default for FrameSelection {
    fn default() -> Self {
        FrameSelection {
            keep: 6,
            gap: 12,
            pool: 4,
            cell_threshold: 0.12,
            min_cells: 8,
            still_cells: 0,
            min_still: 3,
        }
    }
}

/// A (frame, later frame) pair of one video.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FramePair {
    /// Index of the earlier frame.
    pub before: usize,
    /// Index of the later frame.
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

/// The number of cells that changed between two pooled frames.
fn changed(a: &[[f32; 3]], b: &[[f32; 3]], threshold: f32) -> usize {
    a.iter()
        .zip(b)
        .filter(|(a, b)| (0..3).map(|c| (a[c] - b[c]).abs()).sum::<f32>() / 3.0 > threshold)
        .count()
}

/// Motion of every transition `t -> t + 1`: the number of cells that changed.
pub fn motion_profile(frames: &[RgbImage], cfg: &FrameSelection) -> Vec<usize> {
    let pooled: Vec<Vec<[f32; 3]>> = frames.iter().map(|f| cells(f, cfg.pool)).collect();
    pooled
        .windows(2)
        .map(|w| changed(&w[0], &w[1], cfg.cell_threshold))
        .collect()
}

/// The holds of a video, `(first, last)` frames inclusive, in time order: scanning from each
/// frame not yet in a hold, the frames that stay within `still_cells` of it, when at least
/// `min_still` of them.
fn holds(pooled: &[Vec<[f32; 3]>], cfg: &FrameSelection) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut first = 0;
    while first < pooled.len() {
        let mut last = first;
        while last + 1 < pooled.len()
            && changed(&pooled[first], &pooled[last + 1], cfg.cell_threshold) <= cfg.still_cells
        {
            last += 1;
        }
        if last + 1 - first >= cfg.min_still.max(1) {
            out.push((first, last));
            first = last + 1;
        } else {
            first += 1;
        }
    }
    out
}

/// The pairs of a video: the events between consecutive holds whose frames differ in at least
/// `min_cells` cells, the `keep` that change the most with midpoints at least `gap` apart, in
/// time order.
pub fn select_pairs(frames: &[RgbImage], cfg: &FrameSelection) -> Vec<FramePair> {
    let pooled: Vec<Vec<[f32; 3]>> = frames.iter().map(|f| cells(f, cfg.pool)).collect();
    let hs = holds(&pooled, cfg);
    let mut events: Vec<(usize, FramePair)> = hs
        .windows(2)
        .map(|w| {
            let pair = FramePair {
                before: w[0].1,
                after: w[1].0,
            };
            let strength = changed(
                &pooled[pair.before],
                &pooled[pair.after],
                cfg.cell_threshold,
            );
            (strength, pair)
        })
        .filter(|(strength, _)| *strength >= cfg.min_cells.max(1))
        .collect();
    events.sort_by_key(|(strength, p)| (usize::MAX - strength, p.before));
    let mid = |p: &FramePair| p.before + p.after;
    let mut kept: Vec<FramePair> = Vec::new();
    for (_, p) in events {
        if kept.len() == cfg.keep {
            break;
        }
        if kept.iter().all(|k| mid(k).abs_diff(mid(&p)) >= 2 * cfg.gap) {
            kept.push(p);
        }
    }
    kept.sort_unstable_by_key(|p| p.before);
    kept
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
    fn a_slow_creep_no_single_frame_shows_is_found() {
        // A faint 4x4 square creeps one pixel a frame (frames 3 -> 11), still before and
        // after: one pixel moves too little mass between cells to change one, three do.
        let xs = [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 8, 8, 8];
        let frames: Vec<RgbImage> = xs
            .iter()
            .map(|&x0| {
                RgbImage::from_fn(32, 32, |x, y| {
                    if (x0..x0 + 4).contains(&x) && (8..12).contains(&y) {
                        image::Rgb([27, 27, 27])
                    } else {
                        image::Rgb([20, 20, 20])
                    }
                })
            })
            .collect();
        // Holds of 4 frames: a creep this slow looks still over three frames where its edges
        // sit inside cells.
        let cfg = FrameSelection {
            min_cells: 2,
            min_still: 4,
            ..cfg()
        };
        assert!(motion_profile(&frames, &cfg).iter().all(|&m| m == 0));
        // Each hold may take in one frame of creep too small to change a cell of its own.
        let pairs = select_pairs(&frames, &cfg);
        assert_eq!(pairs.len(), 1, "{pairs:?}");
        assert!(pairs[0].before.abs_diff(3) <= 1 && pairs[0].after.abs_diff(11) <= 1);
    }

    #[test]
    fn a_lasting_change_too_small_for_an_action_is_not_an_event() {
        // Still, then one cell brightens for good (a change too small to be an action).
        let mut frames = vec![RgbImage::from_pixel(32, 32, image::Rgb([100, 100, 100])); 8];
        for f in frames.iter_mut().skip(4) {
            for y in 24..28 {
                for x in 24..28 {
                    f.put_pixel(x, y, image::Rgb([140, 140, 140]));
                }
            }
        }
        assert_eq!(motion_profile(&frames, &cfg())[3], 1);
        assert!(select_pairs(&frames, &cfg()).is_empty());
        // It is an event once a single changed cell is enough.
        let one = FrameSelection {
            min_cells: 1,
            ..cfg()
        };
        assert_eq!(
            select_pairs(&frames, &one),
            vec![FramePair {
                before: 3,
                after: 4
            }]
        );
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
