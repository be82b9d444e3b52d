//! Metric histories pre-reduced for charts, so that a chart of a long history reads kilobytes, not every point.
//!
//! A chart `width` pixels wide keeps, per pixel column, the lowest and highest point (and the first and last):
//! reading 100 runs × 100,000 steps to find them costs seconds. Instead each series (run, metric key) keeps
//! *tiles*: at level `l` the steps are cut into tiles [`WIDTHS`]`[l]` steps wide and each tile remembers how many
//! finite points it holds and its first, lowest, highest and last point. A column at least one tile wide then
//! gets its exact extremes from the tiles it covers: the column's lowest point is the lowest of its own tile,
//! which that tile kept (see `extremes_survive` below). Level 0 is one tile for the whole series: its span and
//! count, read first to choose the level.
//!
//! Tiles are kept 32 to a row (`metric_tiles.data`, a small blob) so that a chart reads a few rows per run. The
//! log writer does not fold each commit's points into them (a long series would rewrite a dozen rows per commit):
//! it queues them in `metric_tiles_pending`, in the transaction that stores them, and [`settle`] folds everything
//! queued into the tiles and empties the queue in one transaction, every quarter second while points arrive.
//! Charts read the tiles and the queue, so they never lag. A level is kept only once the series holds
//! [`MIN_POINTS`] points and spans at least [`MIN_COLUMNS`] of its tiles (the narrowest chart could not use it
//! before), and built from the stored points when the series first gets that long: a short history costs one
//! summary row, not twelve. A series logged before tiles existed has none until its next point is settled;
//! until then charts read its points.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, TryStreamExt};

use sqlx::{Acquire, AnyPool};

use crate::backend::Backend;
use crate::error::{Result, StoreError};
use crate::model::{ChartSeries, Metric};
use crate::sql::{exec, Arg, Sql, Tx};
use crate::values::get;
use crate::Store;

/// Tile width in steps at each level; level 0 (one tile per series) is the summary.
pub(crate) const WIDTHS: [i64; 13] =
    [0, 4, 16, 64, 256, 1_024, 4_096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216];
/// Points a series holds before it keeps levels.
pub(crate) const MIN_POINTS: u64 = 256;
/// Tiles per stored row.
const SLOTS: i64 = 32;
/// A level is kept once the series spans this many of its tiles: the narrowest chart (16 px) needs no finer.
pub(crate) const MIN_COLUMNS: i64 = 16;
/// Bytes of one tile in a row: slot (1), count (8), then four (step, value) pairs of 8 + 8.
const ENTRY: usize = 1 + 8 + 4 * 16;
/// Series per statement when reading or writing several: keeps each under SQLite's bound-variable limit.
const CHUNK: usize = 100;

/// One tile: its point count and first, lowest, highest and last points as (step, value).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Tile {
    pub n: u64,
    pub first: (i64, f64),
    pub min: (i64, f64),
    pub max: (i64, f64),
    pub last: (i64, f64),
}

impl Tile {
    fn of(p: (i64, f64)) -> Tile {
        Tile { n: 1, first: p, min: p, max: p, last: p }
    }

    fn merge(&mut self, o: &Tile) {
        self.n += o.n;
        if o.first.0 < self.first.0 {
            self.first = o.first;
        }
        if o.last.0 >= self.last.0 {
            self.last = o.last;
        }
        if o.min.1 < self.min.1 {
            self.min = o.min;
        }
        if o.max.1 > self.max.1 {
            self.max = o.max;
        }
    }

    /// Steps from the first point to the last.
    pub fn span(&self) -> i64 {
        self.last.0.saturating_sub(self.first.0)
    }

    /// Its distinct points in step order.
    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> {
        let mut pts = [self.first, self.min, self.max, self.last];
        pts.sort_by_key(|p| p.0);
        let mut out: Vec<(i64, f64)> = Vec::with_capacity(4);
        for p in pts {
            if out.last().is_none_or(|q| q.0 != p.0 || q.1.to_bits() != p.1.to_bits()) {
                out.push(p);
            }
        }
        out.into_iter()
    }
}

/// The highest level a series spanning `span` steps could use (0: only the summary).
pub(crate) fn top_level(span: i64) -> usize {
    (1..WIDTHS.len()).rev().find(|&l| span >= MIN_COLUMNS.saturating_mul(WIDTHS[l])).unwrap_or(0)
}

/// The highest level a series with this summary keeps: none below [`MIN_POINTS`] points, which a chart reads one
/// by one as cheaply (a metric logged once per epoch, or once per run, costs its summary row only).
pub(crate) fn kept_levels(summary: &Tile) -> usize {
    if summary.n < MIN_POINTS { 0 } else { top_level(summary.span()) }
}

/// The tile of `step` at `level` (> 0), and the row and slot it is kept in.
fn place(level: usize, step: i64) -> (i64, i64, u8) {
    let tile = step.div_euclid(WIDTHS[level]);
    (tile, tile.div_euclid(SLOTS), tile.rem_euclid(SLOTS) as u8)
}

/// A stored row: its tiles by slot.
pub(crate) type Page = BTreeMap<u8, Tile>;

pub(crate) fn encode(page: &Page) -> Vec<u8> {
    let mut out = Vec::with_capacity(page.len() * ENTRY);
    for (slot, t) in page {
        out.push(*slot);
        out.extend_from_slice(&t.n.to_le_bytes());
        for (step, value) in [t.first, t.min, t.max, t.last] {
            out.extend_from_slice(&step.to_le_bytes());
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out
}

pub(crate) fn decode(data: &[u8]) -> Result<Page> {
    if data.len() % ENTRY != 0 {
        return Err(StoreError::Corrupt(format!("a metric tile row of {} bytes", data.len())));
    }
    let word = |b: &[u8], at: usize| -> [u8; 8] { b[at..at + 8].try_into().unwrap_or_default() };
    let point = |b: &[u8], at: usize| (i64::from_le_bytes(word(b, at)), f64::from_le_bytes(word(b, at + 8)));
    Ok(data
        .chunks_exact(ENTRY)
        .map(|e| {
            let tile = Tile { n: u64::from_le_bytes(word(e, 1)), first: point(e, 9), min: point(e, 25), max: point(e, 41), last: point(e, 57) };
            (e[0], tile)
        })
        .collect())
}

/// Tiles of `points` at `level`, by row.
pub(crate) fn tile_points(level: usize, points: &[(i64, f64)]) -> BTreeMap<i64, Page> {
    let mut rows: BTreeMap<i64, Page> = BTreeMap::new();
    for &p in points {
        let (page, slot) = if level == 0 { (0, 0) } else { let (_, page, slot) = place(level, p.0); (page, slot) };
        let t = Tile::of(p);
        rows.entry(page).or_default().entry(slot).and_modify(|old| old.merge(&t)).or_insert(t);
    }
    rows
}

/// How the steps `[lo, hi]` are read: whole tiles (level, first tile, last tile), the widest first and finer
/// ones toward the ends, and what is left at each end, narrower than the finest tile, point by point.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Cover {
    pub spans: Vec<(usize, i64, i64)>,
    pub points: Vec<(i64, i64)>,
}

/// Covers `[lo, hi]` with whole tiles of `level` and below (as a segment tree would).
pub(crate) fn cover(level: usize, lo: i64, hi: i64) -> Cover {
    let mut c = Cover::default();
    cover_into(&mut c, level, i128::from(lo), i128::from(hi));
    c
}

fn cover_into(c: &mut Cover, level: usize, lo: i128, hi: i128) {
    if lo > hi {
        return;
    }
    if level == 0 {
        c.points.push((lo as i64, hi as i64));
        return;
    }
    let w = i128::from(WIDTHS[level]);
    let (first, last) = ((lo + w - 1).div_euclid(w), (hi + 1).div_euclid(w) - 1);
    if first > last {
        return cover_into(c, level - 1, lo, hi);
    }
    // Tile numbers of steps within i64 fit in an i64.
    c.spans.push((level, first as i64, last as i64));
    cover_into(c, level - 1, lo, first * w - 1);
    cover_into(c, level - 1, (last + 1) * w, hi);
}

/// The row numbers holding the tiles `first..=last`.
fn pages_of(first: i64, last: i64) -> (i64, i64) {
    (first.div_euclid(SLOTS), last.div_euclid(SLOTS))
}

/// The tiles of `rows` (level, row number, tiles) that `cover` asks for, each with its first step.
pub(crate) fn tiles_in(cover: &Cover, rows: &[(usize, i64, Page)]) -> Vec<(i64, Tile)> {
    let mut out = Vec::new();
    for (level, page, slots) in rows {
        for (slot, t) in slots {
            let tile = page * SLOTS + i64::from(*slot);
            if cover.spans.iter().any(|(l, a, b)| l == level && tile >= *a && tile <= *b) {
                out.push((tile.saturating_mul(WIDTHS[*level]), *t));
            }
        }
    }
    out
}

/// Merges tiles and single points (each with the step that places it, in step order) into buckets `width`
/// steps wide counted from `origin`: one tile per non-empty bucket, in order. Every tile given must lie
/// within one bucket (tiles are as wide as a level's tiles, buckets a multiple of that, on the same grid).
pub(crate) fn buckets(items: impl IntoIterator<Item = (i64, Tile)>, origin: i64, width: i64) -> Vec<Tile> {
    let index = |step: i64| (i128::from(step) - i128::from(origin)).div_euclid(i128::from(width.max(1)));
    let mut out: Vec<(i128, Tile)> = Vec::new();
    for (step, t) in items {
        let b = index(step);
        match out.last_mut() {
            Some((last, into)) if *last == b => into.merge(&t),
            _ => out.push((b, t)),
        }
    }
    out.into_iter().map(|(_, t)| t).collect()
}

/// The level and bucket width (in steps) for `columns` buckets over `[lo, hi]` of a series that keeps levels up
/// to `top`: the widest tiles no wider than a column, and buckets a whole number of those tiles, at least a
/// column wide. Level 0 means points, one by one.
pub(crate) fn grid(lo: i64, hi: i64, columns: usize, top: usize) -> (usize, i64) {
    let steps = (i128::from(hi) - i128::from(lo) + 1).max(1);
    let cols = columns.max(1) as i128;
    let column = ((steps + cols - 1) / cols).min(i128::from(i64::MAX)) as i64;
    let level = (1..=top).rev().find(|&l| WIDTHS[l] <= column).unwrap_or(0);
    let w = WIDTHS[level].max(1);
    (level, (column / w + i64::from(column % w != 0)).saturating_mul(w))
}

/// One series: (run id, metric key).
type Series<'a> = (&'a str, &'a str);

/// Queues the finite points of `rows` for the tiles; runs in the log writer's transaction, with the points.
/// (Folding them in there would rewrite a dozen tile rows per commit of a long series: half the log writer's
/// throughput. [`settle`] folds many commits' points at once.)
pub(crate) async fn queue(tx: &mut Tx<'_>, rows: &[(&str, &Metric)]) -> Result<()> {
    let finite: Vec<&(&str, &Metric)> = rows.iter().filter(|(_, m)| m.value.is_finite()).collect();
    for chunk in finite.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO metric_tiles_pending (run_uuid, key, step, bits) VALUES ");
        sql.values(chunk.iter().map(|(run, m)| {
            [Some(Arg::from(*run)), Some(Arg::from(m.key.as_str())), Some(Arg::I64(m.step)), Some(Arg::I64(bits_of(m.value)))]
        }));
        sql.query().execute(&mut **tx).await?;
    }
    Ok(())
}

/// A queued value as stored: its bits (see migration 0005).
fn bits_of(value: f64) -> i64 {
    value.to_bits() as i64
}

fn value_of(bits: i64) -> f64 {
    f64::from_bits(bits as u64)
}

/// On PostgreSQL, where several servers and workers write: log writers hold this lock shared while they add
/// points, [`settle`] holds it alone, so that no point is committed between a settle's taking of the queue and
/// its reading of a series' stored points (which would count that point twice).
pub(crate) const PG_LOCK: &str = "SELECT 1 AS locked FROM pg_advisory_xact_lock_shared(7242001)";
const PG_LOCK_ALONE: &str = "SELECT 1 AS locked FROM pg_advisory_xact_lock(7242001)";

/// Folds every queued point into its series' tiles and empties the queue, in one transaction: a point is in the
/// tiles or in the queue, never both, never neither. Returns how many points it folded.
pub(crate) async fn settle(pool: &AnyPool, backend: Backend) -> Result<u64> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    if backend == Backend::Postgres {
        exec(&mut *tx, PG_LOCK_ALONE, &[]).await?;
    }
    // The whole queue as one JSON text: the driver hands rows over one at a time, which for thousands of
    // points costs more than the fold itself (and holds the writer meanwhile).
    let all = match backend {
        Backend::Sqlite => "json_group_array(json_array(id, run_uuid, key, step, bits))",
        Backend::Postgres => "COALESCE(json_agg(json_build_array(id, run_uuid, key, step, bits) ORDER BY id)::text, '[]')",
    };
    let row = Sql::new(&format!("SELECT {all} AS points, MAX(id) AS through FROM metric_tiles_pending")).query().fetch_one(&mut *tx).await?;
    let Some(through) = get::<Option<i64>>(&row, "through")? else { return Ok(0) };
    let mut points: Vec<(i64, String, String, i64, i64)> = serde_json::from_str(&get::<String>(&row, "points")?)
        .map_err(|e| StoreError::Corrupt(format!("the metric points queued for the tiles: {e}")))?;
    // Taken in one transaction with the fold; on PostgreSQL no writer holds an id at or below `through` and
    // has yet to commit (they wait for the lock this pass holds).
    exec(&mut *tx, "DELETE FROM metric_tiles_pending WHERE id <= $1", &[through.into()]).await?;
    // In the order they were logged: which of two points on one step is "last" depends on it.
    points.sort_by_key(|p| p.0);
    let mut batch: BTreeMap<Series, Vec<(i64, f64)>> = BTreeMap::new();
    for (_, run, key, step, bits) in &points {
        batch.entry((run.as_str(), key.as_str())).or_default().push((*step, value_of(*bits)));
    }
    fold(&mut tx, &batch).await?;
    tx.commit().await?;
    Ok(points.len() as u64)
}

/// Folds new points into their series' tiles.
async fn fold(tx: &mut Tx<'_>, batch: &BTreeMap<Series<'_>, Vec<(i64, f64)>>) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let series: Vec<Series> = batch.keys().copied().collect();
    let summaries = read_pages(tx, &series.iter().map(|s| (*s, 0, 0)).collect::<Vec<_>>()).await?;
    // Per series: which levels to rebuild from the stored points, which to merge the new points into.
    // (`None`: the summary and every level it keeps, all from the stored points.)
    let mut rebuild: Vec<(Series, Option<Vec<usize>>)> = Vec::new();
    let mut merge: Vec<(Series, usize, i64)> = Vec::new();
    let mut out: BTreeMap<(Series, usize, i64), Page> = BTreeMap::new();
    for (s, pts) in batch {
        let old = summaries.get(&(*s, 0, 0)).and_then(|p| p.get(&0)).copied();
        let Some(old) = old else {
            // New, or logged before tiles existed: everything from the stored points.
            rebuild.push((*s, None));
            continue;
        };
        let mut new = old;
        for &p in pts {
            new.merge(&Tile::of(p));
        }
        out.insert((*s, 0, 0), Page::from([(0, new)]));
        let (was, now) = (kept_levels(&old), kept_levels(&new));
        if now > was {
            rebuild.push((*s, Some((was + 1..=now).collect())));
        }
        for level in 1..=was {
            let mut pages: Vec<i64> = pts.iter().map(|p| place(level, p.0).1).collect();
            pages.dedup();
            merge.extend(pages.into_iter().map(|page| (*s, level, page)));
        }
    }
    merge.sort();
    merge.dedup();
    let mut stored = read_pages(tx, &merge).await?;
    // The new points' tiles, once per series and level (not once per row they fall in).
    let mut fresh: HashMap<(Series, usize), BTreeMap<i64, Page>> = HashMap::new();
    for (s, level, page) in merge {
        let mut slots = stored.remove(&(s, level, page)).unwrap_or_default();
        let new = fresh.entry((s, level)).or_insert_with(|| tile_points(level, &batch[&s]));
        for (slot, t) in new.remove(&page).unwrap_or_default() {
            slots.entry(slot).and_modify(|old| old.merge(&t)).or_insert(t);
        }
        out.insert((s, level, page), slots);
    }
    for chunk in rebuild.chunks(CHUNK) {
        let points = read_points(tx, &chunk.iter().map(|(s, _)| *s).collect::<Vec<_>>()).await?;
        for (s, levels) in chunk {
            let pts = points.get(s).map_or(&[][..], |v| v);
            let levels: Vec<usize> = match levels {
                Some(levels) => levels.clone(),
                None => {
                    let summary = tile_points(0, pts).get(&0).and_then(|p| p.get(&0)).copied();
                    (0..=summary.map_or(0, |t| kept_levels(&t))).collect()
                }
            };
            for level in levels {
                for (page, slots) in tile_points(level, pts) {
                    out.insert((*s, level, page), slots);
                }
            }
        }
    }
    write_pages(tx, &out).await
}

fn series_values(sql: &mut Sql, series: &[Series]) {
    sql.values(series.iter().map(|(run, key)| [Some(Arg::from(*run)), Some(Arg::from(*key))]));
}

/// The rows `keys` name, those that exist, decoded.
async fn read_pages<'a>(tx: &mut Tx<'_>, keys: &[(Series<'a>, usize, i64)]) -> Result<HashMap<(Series<'a>, usize, i64), Page>> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(CHUNK) {
        let mut sql = Sql::new("SELECT run_uuid, key, level, page, data FROM metric_tiles WHERE (run_uuid, key, level, page) IN (VALUES ");
        sql.values(chunk.iter().map(|((run, key), level, page)| {
            [Some(Arg::from(*run)), Some(Arg::from(*key)), Some(Arg::I64(*level as i64)), Some(Arg::I64(*page))]
        }));
        sql.push(")");
        for row in sql.query().fetch_all(&mut **tx).await? {
            let (run, key): (String, String) = (get(&row, "run_uuid")?, get(&row, "key")?);
            let (level, page) = (crate::values::int(&row, "level")? as usize, get::<i64>(&row, "page")?);
            // Give the answer the caller's borrowed names back.
            if let Some(k) = chunk.iter().find(|((r, k), l, p)| *r == run && *k == key && *l == level && *p == page) {
                found.insert(*k, decode(&get::<Vec<u8>>(&row, "data")?)?);
            }
        }
    }
    Ok(found)
}

/// Every stored finite point of each series, as (step, value).
async fn read_points<'a>(tx: &mut Tx<'_>, series: &[Series<'a>]) -> Result<HashMap<Series<'a>, Vec<(i64, f64)>>> {
    let mut sql = Sql::new("SELECT run_uuid, key, step, value FROM metrics WHERE is_nan = 0 AND (run_uuid, key) IN (VALUES ");
    series_values(&mut sql, series);
    sql.push(")");
    let mut out: HashMap<Series, Vec<(i64, f64)>> = HashMap::new();
    for row in sql.query().fetch_all(&mut **tx).await? {
        let (run, key): (String, String) = (get(&row, "run_uuid")?, get(&row, "key")?);
        let value: f64 = get(&row, "value")?;
        if let (Some(s), true) = (series.iter().find(|(r, k)| *r == run && *k == key), value.is_finite()) {
            out.entry(*s).or_default().push((get(&row, "step")?, value));
        }
    }
    Ok(out)
}

async fn write_pages(tx: &mut Tx<'_>, pages: &BTreeMap<(Series<'_>, usize, i64), Page>) -> Result<()> {
    let rows: Vec<_> = pages.iter().collect();
    for chunk in rows.chunks(CHUNK) {
        let mut sql = Sql::new("INSERT INTO metric_tiles (run_uuid, key, level, page, data) VALUES ");
        sql.values(chunk.iter().map(|(((run, key), level, page), slots)| {
            [
                Some(Arg::from(*run)),
                Some(Arg::from(*key)),
                Some(Arg::I64(*level as i64)),
                Some(Arg::I64(*page)),
                Some(Arg::Bytes(encode(slots))),
            ]
        }));
        sql.push(" ON CONFLICT (run_uuid, key, level, page) DO UPDATE SET data = excluded.data");
        sql.query().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Points of a bucket list, in order.
fn flatten(buckets: Vec<Tile>) -> Vec<(i64, f64)> {
    buckets.iter().flat_map(Tile::points).collect()
}

impl Store {
    /// Folds the points logged since the last pass into the tiles now, rather than at the log writer's next
    /// pass. Charts read the same either way; this is for tests and tools that look at the tiles themselves.
    pub async fn settle_metric_tiles(&self) -> Result<u64> {
        settle(self.writer(), self.backend()).await
    }

    /// One metric of several runs within an optional step range, reduced for a chart `columns` pixels wide:
    /// the range is cut into buckets about a column wide and each keeps its first, lowest, highest and last
    /// finite point, exactly (no spike is lost). Read from the tiles where the history is long, so the cost
    /// follows the chart's width, not the history's length. Runs without the metric come back empty.
    pub async fn metric_chart(
        &self,
        run_ids: &[String],
        key: &str,
        start: Option<i64>,
        end: Option<i64>,
        columns: usize,
    ) -> Result<Vec<ChartSeries>> {
        let columns = columns.max(1);
        let mut summaries: HashMap<String, Tile> = HashMap::new();
        for chunk in run_ids.chunks(500) {
            let mut sql = Sql::new("SELECT run_uuid, data FROM metric_tiles WHERE level = 0 AND page = 0 AND key = ");
            sql.str(key).push(" AND run_uuid IN ").list(chunk.iter().map(Arg::from));
            for row in sql.query().fetch_all(self.reader()).await? {
                if let Some(t) = decode(&get::<Vec<u8>>(&row, "data")?)?.get(&0) {
                    summaries.insert(get(&row, "run_uuid")?, *t);
                }
            }
        }
        // Each run's tiles in its own queries; several at once, so the reader connections work in parallel.
        // (Owned ids: futures borrowing from the closure's argument would not be Send.)
        let jobs: Vec<(String, bool)> = run_ids.iter().map(|id| (id.clone(), summaries.contains_key(id))).collect();
        let tiled: Vec<Option<ChartSeries>> = futures::stream::iter(jobs)
            .map(|(id, tiled)| async move {
                if tiled { self.chart_from_tiles(&id, key, (start, end), columns).await } else { Ok(None) }
            })
            .buffered(4)
            .try_collect()
            .await?;
        let mut by_points = Vec::new();
        let mut out = Vec::with_capacity(run_ids.len());
        for (id, charted) in run_ids.iter().zip(tiled) {
            out.push(charted.unwrap_or_else(|| {
                by_points.push(id.clone());
                ChartSeries { run_id: id.clone(), points: Vec::new(), total: 0 }
            }));
        }
        if by_points.is_empty() {
            return Ok(out);
        }
        // Short histories, and those logged before tiles existed: reduced from their points.
        let mut points: HashMap<String, Vec<(i64, f64)>> = HashMap::new();
        for m in self.metric_history_many(&by_points, key, start, end).await? {
            if m.value.is_finite() {
                points.entry(m.run_id.clone().unwrap_or_default()).or_default().push((m.step, m.value));
            }
        }
        for s in out.iter_mut().filter(|s| by_points.contains(&s.run_id)) {
            let Some(pts) = points.remove(&s.run_id) else { continue };
            s.total = pts.len() as u64;
            s.points = if pts.len() <= 4 * columns {
                pts
            } else {
                let (lo, hi) = (pts[0].0, pts[pts.len() - 1].0);
                let (_, width) = grid(lo, hi, columns, 0);
                flatten(buckets(pts.into_iter().map(|p| (p.0, Tile::of(p))), lo, width))
            };
        }
        Ok(out)
    }

    /// One run's chart from its tiles and its points still queued for them; `None` when its history in the range
    /// is too short for tiles.
    async fn chart_from_tiles(
        &self,
        id: &str,
        key: &str,
        (start, end): (Option<i64>, Option<i64>),
        columns: usize,
    ) -> Result<Option<ChartSeries>> {
        // One snapshot for every read: a settle committing between two of them would show the points it
        // moves from the queue to the tiles twice, or not at all.
        let mut conn = self.reader().acquire().await?;
        let mut tx = conn.begin().await?;
        if self.backend() == Backend::Postgres {
            exec(&mut *tx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ", &[]).await?;
        }
        let mut sql = Sql::new("SELECT data FROM metric_tiles WHERE level = 0 AND page = 0 AND run_uuid = ");
        sql.str(id).push(" AND key = ").str(key);
        let Some(row) = sql.query().fetch_optional(&mut *tx).await? else { return Ok(None) };
        let Some(stored) = decode(&get::<Vec<u8>>(&row, "data")?)?.get(&0).copied() else { return Ok(None) };
        let mut sql = Sql::new("SELECT step, bits FROM metric_tiles_pending WHERE run_uuid = ");
        sql.str(id).push(" AND key = ").str(key).push(" ORDER BY id");
        let mut queued: Vec<(i64, f64)> = Vec::new();
        for row in sql.query().fetch_all(&mut *tx).await? {
            queued.push((get(&row, "step")?, value_of(get(&row, "bits")?)));
        }
        // The series' extent counts the queued points; the levels are those the stored tiles keep.
        let mut summary = stored;
        for p in &queued {
            summary.merge(&Tile::of(*p));
        }
        let summary = &summary;
        let lo = start.unwrap_or(i64::MIN).max(summary.first.0);
        let hi = end.unwrap_or(i64::MAX).min(summary.last.0);
        let (level, width) = grid(lo, hi, columns, kept_levels(&stored));
        if level == 0 || lo > hi {
            // Too few steps for tiles: the points themselves.
            return Ok(None);
        }
        // Where the range reaches past the series' ends there is nothing beyond to leave out: widen it to
        // whole tiles there, so that only a zoomed range's ends are read finer.
        let w = WIDTHS[level];
        let origin = lo.div_euclid(w).saturating_mul(w);
        let lo_read = if start.is_none_or(|s| s <= summary.first.0) { origin } else { lo };
        let hi_read = if end.is_none_or(|e| e >= summary.last.0) {
            hi.div_euclid(w).saturating_add(1).saturating_mul(w).saturating_sub(1)
        } else {
            hi
        };
        let c = cover(level, lo_read, hi_read);
        if c.spans.is_empty() {
            return Ok(None);
        }
        let mut sql = Sql::new("SELECT level, page, data FROM metric_tiles WHERE run_uuid = ");
        sql.str(id).push(" AND key = ").str(key).push(" AND (");
        for (i, (l, a, b)) in c.spans.iter().enumerate() {
            let (pa, pb) = pages_of(*a, *b);
            sql.push(if i == 0 { "(level = " } else { " OR (level = " }).i64(*l as i64);
            sql.push(" AND page >= ").i64(pa).push(" AND page <= ").i64(pb).push(")");
        }
        sql.push(") ORDER BY level, page");
        let mut rows: Vec<(usize, i64, Page)> = Vec::new();
        for row in sql.query().fetch_all(&mut *tx).await? {
            rows.push((crate::values::int(&row, "level")? as usize, get(&row, "page")?, decode(&get::<Vec<u8>>(&row, "data")?)?));
        }
        let mut items = tiles_in(&c, &rows);
        // The ends narrower than a tile come from the stored points, queued ones included; the rest of the
        // queued points join the tiles they fall in.
        for (a, b) in &c.points {
            let mut sql = Sql::new("SELECT step, value FROM metrics WHERE is_nan = 0 AND run_uuid = ");
            sql.str(id).push(" AND key = ").str(key).push(" AND step >= ").i64(*a).push(" AND step <= ").i64(*b).push(" ORDER BY step, timestamp");
            for row in sql.query().fetch_all(&mut *tx).await? {
                let p: (i64, f64) = (get(&row, "step")?, get(&row, "value")?);
                if p.1.is_finite() {
                    items.push((p.0, Tile::of(p)));
                }
            }
        }
        let in_tiles = |step: i64| step >= lo_read && step <= hi_read && !c.points.iter().any(|(a, b)| step >= *a && step <= *b);
        items.extend(queued.iter().filter(|p| in_tiles(p.0)).map(|p| (p.0, Tile::of(*p))));
        items.sort_by_key(|(step, _)| *step);
        let total = items.iter().map(|(_, t)| t.n).sum::<u64>();
        let reduced = buckets(items, origin, width);
        Ok(Some(ChartSeries { run_id: id.to_string(), points: flatten(reduced), total }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rows_read_back_as_written() {
        let pts = [(3, 1.5), (9, -2.0), (10, f64::MAX), (700, 0.25)];
        for level in 0..WIDTHS.len() {
            for (_, page) in tile_points(level, &pts) {
                assert_eq!(decode(&encode(&page)).unwrap(), page);
            }
        }
        assert!(decode(&[1, 2, 3]).is_err(), "a row of the wrong length is refused, not misread");
    }

    fn series() -> impl Strategy<Value = Vec<(i64, f64)>> {
        proptest::collection::vec((-2_000i64..20_000, -1e6f64..1e6), 1..3_000)
    }

    proptest! {
        /// A chart read from tiles (whole tiles inside the range, the points of the partly covered ends) has,
        /// bucket by bucket, the same count, lowest and highest value and first and last step as the same
        /// buckets made from every point: nothing lost, nothing invented.
        #[test]
        fn tiles_answer_like_points(points in series(), lo in -3_000i64..5_000, len in 0i64..25_000, columns in 1usize..300) {
            let hi = lo + len;
            let mut inside: Vec<(i64, f64)> = points.iter().copied().filter(|p| p.0 >= lo && p.0 <= hi).collect();
            inside.sort_by_key(|p| p.0);
            let (level, width) = grid(lo, hi, columns, WIDTHS.len() - 1);
            prop_assert!(width >= (hi - lo + 1) / columns as i64, "buckets are at least a column wide");
            let c = cover(level, lo, hi);
            // Every row of every level, as the store would hold them.
            let rows: Vec<(usize, i64, Page)> = (1..=level)
                .flat_map(|l| tile_points(l, &points).into_iter().map(move |(page, slots)| (l, page, slots)))
                .collect();
            let mut items = tiles_in(&c, &rows);
            for (a, b) in &c.points {
                items.extend(inside.iter().filter(|p| p.0 >= *a && p.0 <= *b).map(|p| (p.0, Tile::of(*p))));
            }
            items.sort_by_key(|(step, _)| *step);
            let origin = lo.div_euclid(WIDTHS[level].max(1)) * WIDTHS[level].max(1);
            let got = buckets(items, origin, width);
            let want = buckets(inside.iter().map(|p| (p.0, Tile::of(*p))), origin, width);
            let key = |t: &Tile| (t.n, t.min.1, t.max.1, t.first.0, t.last.0);
            prop_assert_eq!(got.iter().map(key).collect::<Vec<_>>(), want.iter().map(key).collect::<Vec<_>>());
            // The ends narrower than the finest tile are all that is read point by point.
            prop_assert!(c.points.iter().all(|(a, b)| b - a < 4) || level == 0);
            prop_assert!(got.len() <= columns + 1);
        }

        #[test]
        fn merging_equals_tiling_at_once(points in series(), split in 0usize..3_000, level in 0usize..4) {
            let split = split.min(points.len());
            let whole = tile_points(level, &points);
            let mut parts = tile_points(level, &points[..split]);
            for (page, slots) in tile_points(level, &points[split..]) {
                let into = parts.entry(page).or_default();
                for (slot, t) in slots {
                    into.entry(slot).and_modify(|o| o.merge(&t)).or_insert(t);
                }
            }
            // First/last may differ between points on one step; counts and extremes may not.
            for (page, slots) in &whole {
                for (slot, t) in slots {
                    let m = parts[page][slot];
                    prop_assert_eq!((t.n, t.min.1, t.max.1, t.first.0, t.last.0), (m.n, m.min.1, m.max.1, m.first.0, m.last.0));
                }
            }
        }
    }
}
