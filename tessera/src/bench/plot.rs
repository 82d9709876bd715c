//! Bar charts as PNG files for the benchmarks (plotters, text drawn with ab_glyph from a
//! TrueType font: DejaVu Sans from Debian's fonts-dejavu-core, or the file named by
//! `TESSERA_PLOT_FONT`).

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

/// Where the font is looked for when `TESSERA_PLOT_FONT` does not say.
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// Colors of the series, in order.
const COLORS: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// A grouped bar chart: one group of bars per category, one bar per series.
pub struct Bars {
    pub title: String,
    pub y_desc: String,
    pub categories: Vec<String>,
    /// Each series' name and its value per category.
    pub series: Vec<(String, Vec<f64>)>,
    /// A logarithmic value axis, for values that differ by orders of magnitude.
    pub log: bool,
}

/// Registers the font once; later calls return the first outcome.
fn font() -> Result<(), String> {
    static LOADED: OnceLock<Result<(), String>> = OnceLock::new();
    LOADED
        .get_or_init(|| {
            let path = std::env::var("TESSERA_PLOT_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_string());
            let bytes = std::fs::read(&path).map_err(|e| {
                format!("cannot read the font {path} for the plots ({e}); install fonts-dejavu-core or set TESSERA_PLOT_FONT to a .ttf file")
            })?;
            // The font lives as long as the process, as plotters requires.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{path} is not a TrueType font plotters can use"))
        })
        .clone()
}

/// Draws `bars` into a PNG file at `path`.
pub fn bar_chart(path: &Path, bars: &Bars) -> Result<(), String> {
    font()?;
    let draw = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    let root = BitMapBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let groups = bars.categories.len().max(1) as f64;
    let max = bars
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1e-6);
    let min = bars
        .series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| *v > 0.0)
        .fold(max, f64::min);
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(&bars.title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(36)
        .y_label_area_size(70);
    let categories = bars.categories.clone();
    let label = move |x: &f64| {
        let i = x.floor() as usize;
        if (x - x.floor() - 0.5).abs() < 1e-9 {
            categories.get(i).cloned().unwrap_or_default()
        } else {
            String::new()
        }
    };
    if bars.log {
        let floor = min / 2.0;
        let chart = builder
            .build_cartesian_2d(0.0..groups, (floor..max * 2.0).log_scale())
            .map_err(|e| draw(&e))?;
        fill(chart, bars, floor, &label).map_err(|e| draw(&e))?;
    } else {
        let chart = builder
            .build_cartesian_2d(0.0..groups, 0.0..max * 1.15)
            .map_err(|e| draw(&e))?;
        fill(chart, bars, 0.0, &label).map_err(|e| draw(&e))?;
    }
    root.present().map_err(|e| draw(&e))
}

/// Draws the mesh, the bars (from `floor` up) and the legend on a chart of either value axis.
fn fill<'a, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'a>, Cartesian2d<RangedCoordf64, Y>>,
    bars: &Bars,
    floor: f64,
    label: &dyn Fn(&f64) -> String,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let e = |e: &dyn std::fmt::Display| e.to_string();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.categories.len() * 2 + 1)
        .x_label_formatter(label)
        .y_desc(bars.y_desc.as_str())
        .draw()
        .map_err(|x| e(&x))?;
    let width = 0.8 / bars.series.len().max(1) as f64;
    for (s, (name, values)) in bars.series.iter().enumerate() {
        let color = COLORS[s % COLORS.len()];
        let rects = values.iter().enumerate().map(|(c, v)| {
            let x0 = c as f64 + 0.1 + s as f64 * width;
            Rectangle::new([(x0, floor), (x0 + width * 0.92, v.max(floor))], color.filled())
        });
        chart
            .draw_series(rects)
            .map_err(|x| e(&x))?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))
}
