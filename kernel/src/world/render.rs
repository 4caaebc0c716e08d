//! The world's own rasteriser: sphere-traced signed distance fields with soft shadows and
//! supersampled anti-aliasing. Deterministic: the same scene and view give the same bytes.
//!
//! A [`Scene`] becomes a list of placed `Instance`s; videos interpolate instances between
//! two scenes, and the recogniser renders single instances as templates.

use super::scene::{Color, Object, Place, Scene, Shape};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::ops::{Add, Mul, Sub};

/// Image size and anti-aliasing.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct RenderConfig {
    /// Width and height in pixels (64 by default; any size from 16 up works).
    pub size: u32,
    /// Supersampling: `samples x samples` rays per pixel.
    pub samples: u32,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            size: 64,
            samples: 2,
        }
    }
}

/// Camera and lighting perturbations (zero for dataset triplets, small for videos).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct View {
    /// Offset of the camera position, world units.
    pub(crate) camera: [f32; 3],
    /// Relative change of the light's intensity (0.1 = 10 % brighter).
    pub(crate) light: f32,
}

/// One object placed in the world, ready to render.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Instance {
    pub(crate) shape: Shape,
    pub(crate) albedo: [f32; 3],
    pub(crate) radius: f32,
    /// Centre of the object's base, world units.
    pub(crate) pos: [f32; 3],
    /// 0 = upright, 1 = upside down; in between while turning.
    pub(crate) flip: f32,
    /// Box lid: 0 = closed, 1 = open.
    pub(crate) lid: f32,
    /// Overall scale (1; shrinks to 0 when an object appears or vanishes in a video).
    pub(crate) scale: f32,
}

/// The visible objects of a scene, placed, with their colours.
pub(crate) fn instances(scene: &Scene) -> Vec<(Color, Instance)> {
    let mut out = Vec::new();
    for obj in scene.objects.iter() {
        if matches!(obj.place, Place::Under(_)) {
            continue; // hidden under an upside-down bowl
        }
        if let Some(pos) = base_position(scene, obj) {
            out.push((obj.color, instance_of(obj, pos)));
        }
    }
    out
}

pub(crate) fn instance_of(obj: &Object, pos: [f32; 3]) -> Instance {
    Instance {
        shape: obj.shape,
        albedo: obj.color.albedo(),
        radius: obj.size.radius(),
        pos,
        flip: if obj.upside_down { 1.0 } else { 0.0 },
        lid: if obj.lid_open { 1.0 } else { 0.0 },
        scale: 1.0,
    }
}

/// Where the base of `obj` is, following what it stands on or in.
pub(crate) fn base_position(scene: &Scene, obj: &Object) -> Option<[f32; 3]> {
    match obj.place {
        Place::Table(slot) => {
            let (x, z) = slot.center();
            Some([x, 0.0, z])
        }
        Place::OnTop(c) | Place::Inside(c) | Place::Under(c) => {
            let base = scene.get(c)?;
            let [x, y, z] = base_position(scene, base)?;
            let lift = match obj.place {
                Place::OnTop(_) => base.height(),
                Place::Inside(_) => 0.15 * base.size.radius(),
                _ => 0.0,
            };
            Some([x, y + lift, z])
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct V3(f32, f32, f32);

impl Add for V3 {
    type Output = V3;
    fn add(self, o: V3) -> V3 {
        V3(self.0 + o.0, self.1 + o.1, self.2 + o.2)
    }
}
impl Sub for V3 {
    type Output = V3;
    fn sub(self, o: V3) -> V3 {
        V3(self.0 - o.0, self.1 - o.1, self.2 - o.2)
    }
}
impl Mul<f32> for V3 {
    type Output = V3;
    fn mul(self, s: f32) -> V3 {
        V3(self.0 * s, self.1 * s, self.2 * s)
    }
}
impl V3 {
    fn dot(self, o: V3) -> f32 {
        self.0 * o.0 + self.1 * o.1 + self.2 * o.2
    }
    fn len(self) -> f32 {
        self.dot(self).sqrt()
    }
    fn norm(self) -> V3 {
        self * (1.0 / self.len())
    }
    fn cross(self, o: V3) -> V3 {
        V3(
            self.1 * o.2 - self.2 * o.1,
            self.2 * o.0 - self.0 * o.2,
            self.0 * o.1 - self.1 * o.0,
        )
    }
    fn max0(self) -> V3 {
        V3(self.0.max(0.0), self.1.max(0.0), self.2.max(0.0))
    }
    fn abs(self) -> V3 {
        V3(self.0.abs(), self.1.abs(), self.2.abs())
    }
}

fn sd_box(p: V3, b: V3, round: f32) -> f32 {
    let q = p.abs() - b + V3(round, round, round);
    q.max0().len() + q.0.max(q.1.max(q.2)).min(0.0) - round
}

fn sd_capped_cone(p: V3, h: f32, r1: f32, r2: f32) -> f32 {
    // Inigo Quilez's exact capped cone, centred at half height.
    let q = (p.0.hypot(p.2), p.1);
    let k1 = (r2, h);
    let k2 = (r2 - r1, 2.0 * h);
    let ca = (
        q.0 - q.0.min(if q.1 < 0.0 { r1 } else { r2 }),
        q.1.abs() - h,
    );
    let d = (k1.0 - q.0, k1.1 - q.1);
    let t = ((d.0 * k2.0 + d.1 * k2.1) / (k2.0 * k2.0 + k2.1 * k2.1)).clamp(0.0, 1.0);
    let cb = (q.0 - k1.0 + k2.0 * t, q.1 - k1.1 + k2.1 * t);
    let s = if cb.0 < 0.0 && ca.1 < 0.0 { -1.0 } else { 1.0 };
    s * (ca.0 * ca.0 + ca.1 * ca.1)
        .min(cb.0 * cb.0 + cb.1 * cb.1)
        .sqrt()
}

/// Part of an object a ray hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Body,
    Lid,
}

const LID_ALBEDO: [f32; 3] = [0.80, 0.78, 0.72];
const TABLE_ALBEDO: [f32; 3] = [0.50, 0.43, 0.35];
const TABLE_HALF: f32 = 1.45;

impl Instance {
    /// Bounding sphere (centre, radius).
    fn bound(&self) -> (V3, f32) {
        let r = self.radius * self.scale;
        let (cy, rad) = match self.shape {
            Shape::Box => (1.4 * r, 3.2 * r),
            _ => (1.1 * r, 1.8 * r),
        };
        let cz = if self.shape == Shape::Box {
            0.4 * r
        } else {
            0.0
        };
        (V3(self.pos[0], self.pos[1] + cy, self.pos[2] + cz), rad)
    }

    /// Signed distance from `p` to the object, and which part is nearest.
    fn sdf(&self, p: V3) -> (f32, Part) {
        let s = self.scale.max(1e-3);
        let r = self.radius;
        let mut q = (p - V3(self.pos[0], self.pos[1], self.pos[2])) * (1.0 / s);
        if self.flip > 0.0 {
            let h2 = 0.5 * self.shape.height(r);
            let a = std::f32::consts::PI * self.flip;
            let (sa, ca) = a.sin_cos();
            let (y, z) = (q.1 - h2, q.2);
            q = V3(q.0, ca * y - sa * z + h2, sa * y + ca * z);
        }
        let (d, part) = match self.shape {
            Shape::Cube => {
                let c = std::f32::consts::FRAC_1_SQRT_2;
                let rq = V3(c * (q.0 + q.2), q.1 - 0.75 * r, c * (q.2 - q.0));
                (
                    sd_box(rq, V3(0.75 * r, 0.75 * r, 0.75 * r), 0.06 * r),
                    Part::Body,
                )
            }
            Shape::Sphere => ((q - V3(0.0, r, 0.0)).len() - r, Part::Body),
            Shape::Cylinder => {
                let d = (q.0.hypot(q.2) - 0.65 * r, (q.1 - 1.1 * r).abs() - 1.1 * r);
                let outside = (d.0.max(0.0)).hypot(d.1.max(0.0));
                (d.0.max(d.1).min(0.0) + outside, Part::Body)
            }
            Shape::Cone => (
                sd_capped_cone(q - V3(0.0, 1.1 * r, 0.0), 1.1 * r, r, 0.05 * r),
                Part::Body,
            ),
            Shape::Bowl => {
                let big = 1.15 * r;
                let c = q - V3(0.0, big, 0.0);
                let shell = (c.len() - 0.93 * big).abs() - 0.07 * big;
                (shell.max(c.1), Part::Body)
            }
            Shape::Box => {
                let outer = sd_box(
                    q - V3(0.0, 0.8 * r, 0.0),
                    V3(1.2 * r, 0.8 * r, 1.0 * r),
                    0.04 * r,
                );
                let inner = sd_box(
                    q - V3(0.0, 0.95 * r, 0.0),
                    V3(1.05 * r, 0.8 * r, 0.85 * r),
                    0.0,
                );
                let body = outer.max(-inner);
                // The lid hinges on the front top edge and swings over to hang down in
                // front of the box, so an open box never hides the slot behind it.
                let a = 230f32.to_radians() * self.lid;
                let (sa, ca) = a.sin_cos();
                let hinge = V3(0.0, 1.6 * r, 1.0 * r);
                let l = q - hinge;
                let lq = V3(l.0, ca * l.1 + sa * l.2, -sa * l.1 + ca * l.2);
                let lid = sd_box(
                    lq - V3(0.0, 0.08 * r, -1.05 * r),
                    V3(1.25 * r, 0.08 * r, 1.05 * r),
                    0.02 * r,
                );
                if lid < body {
                    (lid, Part::Lid)
                } else {
                    (body, Part::Body)
                }
            }
        };
        (d * s, part)
    }
}

/// A scene ready to trace: instances, camera and light.
pub(crate) struct Renderer<'a> {
    instances: &'a [Instance],
    bounds: Vec<(V3, f32)>,
    eye: V3,
    fwd: V3,
    right: V3,
    up: V3,
    tan_half_fov: f32,
    light_dir: V3,
    light: f32,
    cfg: RenderConfig,
}

/// What one pixel saw.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct PixelHit {
    /// Fraction of the pixel's samples that hit the body of the tracked instance (the first
    /// one; the others only hide it).
    pub(crate) coverage: f32,
    /// Mean brightness (max channel, gamma encoded) of those samples.
    pub(crate) value: f32,
}

const EYE: V3 = V3(0.0, 3.9, 2.7);
const TARGET: V3 = V3(0.0, 0.0, 0.12);

impl<'a> Renderer<'a> {
    pub(crate) fn new(instances: &'a [Instance], cfg: RenderConfig, view: View) -> Self {
        let eye = EYE + V3(view.camera[0], view.camera[1], view.camera[2]);
        let fwd = (TARGET - eye).norm();
        let right = fwd.cross(V3(0.0, 1.0, 0.0)).norm();
        let up = right.cross(fwd);
        Renderer {
            instances,
            bounds: instances.iter().map(|i| i.bound()).collect(),
            eye,
            fwd,
            right,
            up,
            tan_half_fov: (19.5f32).to_radians().tan(),
            light_dir: V3(-0.45, 1.0, 0.35).norm(),
            light: 1.0 + view.light,
            cfg,
        }
    }

    /// Projects a world point to pixel coordinates (x right, y down).
    pub(crate) fn project(&self, p: [f32; 3]) -> (f32, f32) {
        let d = V3(p[0], p[1], p[2]) - self.eye;
        let z = d.dot(self.fwd);
        let u = d.dot(self.right) / z / self.tan_half_fov;
        let v = d.dot(self.up) / z / self.tan_half_fov;
        let n = self.cfg.size as f32;
        ((u + 1.0) * 0.5 * n, (1.0 - v) * 0.5 * n)
    }

    fn ray(&self, x: f32, y: f32) -> V3 {
        let n = self.cfg.size as f32;
        let u = (x / n * 2.0 - 1.0) * self.tan_half_fov;
        let v = (1.0 - y / n * 2.0) * self.tan_half_fov;
        (self.fwd + self.right * u + self.up * v).norm()
    }

    fn map(&self, p: V3, which: &[usize]) -> (f32, usize, Part) {
        let mut best = (f32::INFINITY, usize::MAX, Part::Body);
        for &i in which {
            let (d, part) = self.instances[i].sdf(p);
            if d < best.0 {
                best = (d, i, part);
            }
        }
        best
    }

    /// Instances whose bounding sphere (grown by `pad`) the ray crosses before `t_max`.
    fn candidates(&self, ro: V3, rd: V3, pad: f32, t_max: f32, out: &mut Vec<usize>) -> (f32, f32) {
        out.clear();
        let (mut t0, mut t1) = (f32::INFINITY, 0f32);
        for (i, &(c, r)) in self.bounds.iter().enumerate() {
            let oc = ro - c;
            let b = oc.dot(rd);
            let disc = b * b - (oc.dot(oc) - (r + pad) * (r + pad));
            if disc <= 0.0 {
                continue;
            }
            let s = disc.sqrt();
            let (ta, tb) = (-b - s, -b + s);
            if tb <= 0.0 || ta >= t_max {
                continue;
            }
            out.push(i);
            t0 = t0.min(ta.max(0.0));
            t1 = t1.max(tb.min(t_max));
        }
        (t0, t1)
    }

    fn normal(&self, p: V3, i: usize) -> V3 {
        let e = 1e-3;
        let f = |d: V3| self.instances[i].sdf(p + d).0;
        V3(
            f(V3(e, 0.0, 0.0)) - f(V3(-e, 0.0, 0.0)),
            f(V3(0.0, e, 0.0)) - f(V3(0.0, -e, 0.0)),
            f(V3(0.0, 0.0, e)) - f(V3(0.0, 0.0, -e)),
        )
        .norm()
    }

    fn soft_shadow(&self, p: V3, buf: &mut Vec<usize>) -> f32 {
        let rd = self.light_dir;
        let (_, t_end) = self.candidates(p, rd, 0.1, 6.0, buf);
        if buf.is_empty() {
            return 1.0;
        }
        let mut res = 1f32;
        let mut t = 0.02;
        for _ in 0..48 {
            let h = self.map(p + rd * t, buf).0;
            res = res.min(10.0 * h / t);
            if res < 0.002 || t > t_end {
                break;
            }
            t += h.clamp(0.01, 0.25);
        }
        res.clamp(0.0, 1.0)
    }

    fn shade(&self, albedo: [f32; 3], p: V3, n: V3, rd: V3, buf: &mut Vec<usize>) -> [f32; 3] {
        let diffuse = n.dot(self.light_dir).max(0.0);
        let shadow = if diffuse > 0.0 {
            self.soft_shadow(p + n * 2e-3, buf)
        } else {
            0.0
        };
        let ambient = 0.22 + 0.12 * n.1.max(0.0);
        let refl = rd - n * (2.0 * rd.dot(n));
        let spec = 0.10 * refl.dot(self.light_dir).max(0.0).powi(24) * shadow;
        let k = ambient + 0.85 * self.light * diffuse * shadow;
        albedo.map(|a| a * k + spec)
    }

    /// Traces one ray: its colour and which (instance, part) it hit, if any.
    fn trace(
        &self,
        rd: V3,
        buf: &mut Vec<usize>,
        buf2: &mut Vec<usize>,
    ) -> ([f32; 3], Option<(usize, Part)>) {
        let ro = self.eye;
        let t_table = if rd.1 < 0.0 {
            -ro.1 / rd.1
        } else {
            f32::INFINITY
        };
        let t_far = t_table.min(12.0);
        let (t0, t1) = self.candidates(ro, rd, 0.0, t_far, buf);
        if !buf.is_empty() {
            let mut t = t0;
            for _ in 0..128 {
                let p = ro + rd * t;
                let (d, i, part) = self.map(p, buf);
                if d < 2e-4 * t.max(1.0) {
                    let n = self.normal(p, i);
                    let albedo = if part == Part::Lid {
                        LID_ALBEDO
                    } else {
                        self.instances[i].albedo
                    };
                    return (self.shade(albedo, p, n, rd, buf2), Some((i, part)));
                }
                t += d;
                if t > t1 {
                    break;
                }
            }
        }
        let p = ro + rd * t_table;
        if t_table.is_finite() && p.0.abs() <= TABLE_HALF && p.2.abs() <= TABLE_HALF {
            // Faint wood grain so the table is not a flat colour.
            let grain = 1.0 + 0.04 * (p.0 * 9.0 + (p.2 * 3.0).sin()).sin();
            let albedo = TABLE_ALBEDO.map(|a| a * grain);
            return (self.shade(albedo, p, V3(0.0, 1.0, 0.0), rd, buf2), None);
        }
        let g = 0.10 + 0.06 * rd.1.max(-1.0);
        ([g, g * 1.05, g * 1.15], None)
    }

    fn samples(&self) -> impl Iterator<Item = (f32, f32)> + '_ {
        let s = self.cfg.samples.max(1);
        (0..s * s).map(move |k| {
            (
                ((k % s) as f32 + 0.5) / s as f32,
                ((k / s) as f32 + 0.5) / s as f32,
            )
        })
    }

    /// Renders the full image.
    pub(crate) fn render(&self) -> RgbImage {
        let n = self.cfg.size;
        let mut img = RgbImage::new(n, n);
        let (mut b1, mut b2) = (Vec::new(), Vec::new());
        let count = (self.cfg.samples.max(1) * self.cfg.samples.max(1)) as f32;
        for y in 0..n {
            for x in 0..n {
                let mut acc = [0f32; 3];
                for (sx, sy) in self.samples() {
                    let (c, _) =
                        self.trace(self.ray(x as f32 + sx, y as f32 + sy), &mut b1, &mut b2);
                    for k in 0..3 {
                        acc[k] += c[k].max(0.0).sqrt().min(1.0);
                    }
                }
                let px = acc.map(|a| (a / count * 255.0 + 0.5) as u8);
                img.put_pixel(x, y, image::Rgb(px));
            }
        }
        img
    }

    /// Per-pixel coverage and brightness of instance 0's body, over the pixels inside
    /// `(x0, y0, x1, y1)`; row-major over that box.
    pub(crate) fn coverage(&self, x0: u32, y0: u32, x1: u32, y1: u32) -> Vec<PixelHit> {
        let (mut b1, mut b2) = (Vec::new(), Vec::new());
        let count = (self.cfg.samples.max(1) * self.cfg.samples.max(1)) as f32;
        let mut out = Vec::with_capacity(((x1 - x0) * (y1 - y0)) as usize);
        for y in y0..y1 {
            for x in x0..x1 {
                let mut hit = PixelHit::default();
                for (sx, sy) in self.samples() {
                    let (c, what) =
                        self.trace(self.ray(x as f32 + sx, y as f32 + sy), &mut b1, &mut b2);
                    if what == Some((0, Part::Body)) {
                        hit.coverage += 1.0 / count;
                        hit.value += c
                            .iter()
                            .fold(0f32, |m, v| m.max(*v))
                            .max(0.0)
                            .sqrt()
                            .min(1.0)
                            / count;
                    }
                }
                if hit.coverage > 0.0 {
                    hit.value /= hit.coverage;
                }
                out.push(hit);
            }
        }
        out
    }

    /// Pixel box `(x0, y0, x1, y1)` that contains instance `i` (clamped to the image).
    pub(crate) fn screen_box(&self, i: usize) -> (u32, u32, u32, u32) {
        let (c, r) = self.bounds[i];
        let mut lo = (f32::INFINITY, f32::INFINITY);
        let mut hi = (f32::NEG_INFINITY, f32::NEG_INFINITY);
        for dx in [-r, r] {
            for dy in [-r, r] {
                for dz in [-r, r] {
                    let (x, y) = self.project([c.0 + dx, c.1 + dy, c.2 + dz]);
                    lo = (lo.0.min(x), lo.1.min(y));
                    hi = (hi.0.max(x), hi.1.max(y));
                }
            }
        }
        let n = self.cfg.size as f32;
        let cl = |v: f32| v.clamp(0.0, n) as u32;
        (
            cl(lo.0.floor()),
            cl(lo.1.floor()),
            cl(hi.0.ceil() + 1.0),
            cl(hi.1.ceil() + 1.0),
        )
    }
}

/// Renders a scene with the default view.
pub fn render_scene(scene: &Scene, cfg: RenderConfig) -> RgbImage {
    render_instances(
        &instances(scene)
            .into_iter()
            .map(|(_, i)| i)
            .collect::<Vec<_>>(),
        cfg,
        View::default(),
    )
}

pub(crate) fn render_instances(instances: &[Instance], cfg: RenderConfig, view: View) -> RgbImage {
    Renderer::new(instances, cfg, view).render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::scene::{Size, Slot};

    fn scene() -> Scene {
        Scene {
            objects: vec![
                Object::new(
                    Shape::Cube,
                    Color::Red,
                    Size::Large,
                    Place::Table(Slot::new(1, 1)),
                ),
                Object::new(
                    Shape::Sphere,
                    Color::Blue,
                    Size::Small,
                    Place::Table(Slot::new(0, 0)),
                ),
            ],
        }
    }

    #[test]
    fn rendering_is_deterministic_and_sized() {
        let cfg = RenderConfig::default();
        let a = render_scene(&scene(), cfg);
        let b = render_scene(&scene(), cfg);
        assert_eq!(a.as_raw(), b.as_raw());
        assert_eq!(a.dimensions(), (64, 64));
        let big = render_scene(
            &scene(),
            RenderConfig {
                size: 128,
                samples: 2,
            },
        );
        assert_eq!(big.dimensions(), (128, 128));
    }

    #[test]
    fn objects_appear_where_their_slot_projects() {
        let cfg = RenderConfig::default();
        let img = render_scene(&scene(), cfg);
        let insts: Vec<Instance> = instances(&scene()).into_iter().map(|(_, i)| i).collect();
        let r = Renderer::new(&insts, cfg, View::default());
        let (x, y) = r.project([0.0, 0.3, 0.0]);
        let p = img.get_pixel(x as u32, y as u32).0;
        assert!(
            p[0] > 2 * p[1] && p[0] > 2 * p[2],
            "the red cube is at the centre: {p:?}"
        );
        let empty = render_scene(&Scene::default(), cfg);
        let q = empty.get_pixel(x as u32, y as u32).0;
        assert!(
            q[0] < p[0] && q[1] > p[1],
            "an empty table is not red there: {q:?}"
        );
    }

    #[test]
    fn shadows_darken_the_table_behind_the_light() {
        let cfg = RenderConfig::default();
        let one = Scene {
            objects: vec![Object::new(
                Shape::Cylinder,
                Color::Green,
                Size::Large,
                Place::Table(Slot::new(1, 1)),
            )],
        };
        let with = render_scene(&one, cfg);
        let without = render_scene(&Scene::default(), cfg);
        let insts: Vec<Instance> = instances(&one).into_iter().map(|(_, i)| i).collect();
        let r = Renderer::new(&insts, cfg, View::default());
        // The light comes from the left-front-top, so the shadow falls right and back.
        let (x, y) = r.project([0.35, 0.0, -0.3]);
        let (a, b) = (
            with.get_pixel(x as u32, y as u32).0,
            without.get_pixel(x as u32, y as u32).0,
        );
        assert!(
            (a[0] as i32) < b[0] as i32 - 20,
            "shadowed {a:?} vs lit {b:?}"
        );
    }
}
