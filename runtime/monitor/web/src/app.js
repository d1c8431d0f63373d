// The page of `myelin run --monitor` (runtime/src/cli_monitor.c serves it).
// It listens on the monitor's WebSocket for pushes:
//   {type: "stats"}   every sample (per-stage counters, rates, queue fill, busy)
//   {type: "metrics"} the history of every metrics stream, when it changes
//   {type: "map"}     the latest map of an edge: three slices of its voxel grid
//   {type: "spikes"}  the spikes of the chosen edge since the last push
// and asks for a spikes edge by sending "spikes EDGE". Plots: uPlot (npm),
// bundled with this file by esbuild at build time (runtime/monitor/page.cmake).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

const $ = (id) => document.getElementById(id);
const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
  '#bcbd22', '#17becf'];
const WINDOW = 240; // samples on the live plots (a minute at 4 per second)
const RASTER_STEPS = 2000; // steps the spike raster keeps

let ws = null;
let stageIds = null;
const live = { t: [], rate: [], queue: [], busy: [], charts: {} };
const metricCharts = {}; // edge -> {chart, names}
const maps = {}; // edge -> latest map push
let raster = { edge: null, offset: 0, x: [], unit: [], units: 0 };

const fmt = (v, digits = 3) => (v === null || v === undefined ? '–' : Number(v).toPrecision(digits));
const count = (v) => (v === undefined ? '–' : v.toLocaleString('en-US'));
const width = (el) => Math.max(300, el.clientWidth || 300);

function text(id, s) {
  $(id).textContent = s;
}

function plot(el, title, yLabel, labels, data, xLabel = 's') {
  const series = [{ label: xLabel }].concat(labels.map((l, i) => ({
    label: l, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
    points: { show: data[0].length < 60 },
  })));
  return new uPlot({
    title, width: width(el), height: 220, series, scales: { x: { time: false } },
    axes: [{ label: xLabel }, { label: yLabel, size: 60 }], legend: { live: false },
  }, data, el);
}

// ---- stats: the table and the live plots ----
function onStats(m) {
  text('name', m.pipeline);
  text('file', m.file);
  const st = $('state');
  st.textContent = m.state + (m.state === 'finished' ? ` (exit ${m.exit_code})` : '');
  st.className = 'state ' + m.state;
  text('elapsed', `${fmt(m.elapsed, 4)} s`);
  const body = $('stages').tBodies[0];
  if (body.rows.length !== m.stages.length) {
    body.textContent = '';
    for (let i = 0; i < m.stages.length; i++) body.insertRow().innerHTML = '<td></td>'.repeat(7);
  }
  m.stages.forEach((s, i) => {
    const c = body.rows[i].cells;
    const cells = [s.id, s.plugin, s.inputs ? count(s.msgs_in) : '–', count(s.msgs_out),
      fmt(s.inputs ? s.rate_in : s.rate_out), s.inputs ? `${s.queue}/${s.queue_capacity}` : '–',
      s.busy === undefined ? '–' : `${(100 * s.busy).toFixed(1)}%`];
    cells.forEach((v, k) => { c[k].textContent = v; });
  });
  updateEdges(m.edges || []);
  if (m.state === 'starting' || !m.stages.length || m.stages[0].msgs_out === undefined) return;
  const ids = m.stages.map((s) => s.id);
  if (!stageIds) {
    stageIds = ids;
    for (const k of ['rate', 'queue', 'busy']) live[k] = ids.map(() => []);
  }
  live.t.push(m.elapsed);
  m.stages.forEach((s, i) => {
    live.rate[i].push(s.inputs ? s.rate_in : s.rate_out);
    live.queue[i].push(s.inputs && s.queue_capacity ? (100 * s.queue) / s.queue_capacity : null);
    live.busy[i].push(s.busy === null ? null : 100 * s.busy);
  });
  if (live.t.length > WINDOW) {
    live.t.shift();
    for (const k of ['rate', 'queue', 'busy']) live[k].forEach((a) => a.shift());
  }
  const specs = { rate: ['messages/s', 'msgs/s'], queue: ['queue fill', '% of capacity'],
    busy: ['busy time', '% of a core'] };
  for (const k of Object.keys(specs)) {
    const data = [live.t.slice()].concat(live[k].map((a) => a.slice()));
    if (!live.charts[k]) live.charts[k] = plot($('plot-' + k), specs[k][0], specs[k][1], stageIds, data);
    else live.charts[k].setData(data);
  }
}

function fillSelect(sel, edges) {
  const have = Array.from(sel.options).map((o) => o.value).join('\n');
  if (have === edges.join('\n')) return false;
  const keep = sel.value;
  sel.textContent = '';
  for (const e of edges) sel.add(new Option(e, e));
  if (edges.includes(keep)) sel.value = keep;
  return true;
}

function updateEdges(edges) {
  const spikes = edges.filter((e) => e.kind.split('|').includes('spikes')).map((e) => e.edge);
  const mapEdges = edges.filter((e) => e.kind.split('|').includes('map')).map((e) => e.edge);
  $('spikes-sec').hidden = !spikes.length;
  $('map-sec').hidden = !mapEdges.length;
  $('metrics-sec').hidden = !edges.some((e) => e.kind.split('|').includes('metrics'));
  if (fillSelect($('spike-edge'), spikes) && spikes.length && raster.edge === null) chooseSpikes(spikes[0]);
  fillSelect($('map-edge'), mapEdges);
}

// ---- metrics: one plot per stream ----
function onMetrics(m) {
  const box = $('metrics');
  for (const s of m.series) {
    if (!s.x.length) continue;
    let c = metricCharts[s.edge];
    const data = [s.x].concat(s.y);
    if (c && c.names.join('\n') === s.names.join('\n')) {
      c.chart.setData(data);
      continue;
    }
    if (c) c.chart.destroy();
    else {
      box.querySelector('.empty')?.remove();
      c = metricCharts[s.edge] = { el: document.createElement('div') };
      c.el.className = 'plot';
      box.appendChild(c.el);
    }
    c.names = s.names.slice();
    c.chart = plot(c.el, s.edge, 'value', s.names, data, s.x_label);
  }
}

// ---- map: three slices through the voxel of largest |value| ----
function coldHot(v, vmax) { // nilearn's cold_hot: blue..cyan below 0, red..yellow above
  const t = Math.max(-1, Math.min(1, v / (vmax || 1)));
  const a = Math.abs(t);
  const ramp = (x) => Math.round(255 * Math.max(0, Math.min(1, x)));
  return t >= 0 ? [ramp(0.3 + 1.4 * a), ramp(2 * a - 1), ramp(3 * a - 2.2)]
    : [ramp(3 * a - 2.2), ramp(2 * a - 1), ramp(0.3 + 1.4 * a)];
}

function sliceCanvas(sl, vmax, scale) {
  const c = document.createElement('canvas');
  c.width = sl.w * scale;
  c.height = sl.h * scale;
  const img = new ImageData(sl.w, sl.h);
  for (let j = 0; j < sl.h; j++) {
    for (let i = 0; i < sl.w; i++) {
      const v = sl.v[j * sl.w + i];
      const o = 4 * ((sl.h - 1 - j) * sl.w + i); // the second axis points up
      const rgb = v === null ? [40, 40, 40] : coldHot(v, vmax);
      img.data.set([rgb[0], rgb[1], rgb[2], 255], o);
    }
  }
  const tmp = document.createElement('canvas');
  tmp.width = sl.w;
  tmp.height = sl.h;
  tmp.getContext('2d').putImageData(img, 0, 0);
  const g = c.getContext('2d');
  g.imageSmoothingEnabled = false;
  g.drawImage(tmp, 0, 0, c.width, c.height);
  return c;
}

function drawMap() {
  const box = $('map');
  const m = maps[$('map-edge').value] || Object.values(maps)[0];
  if (!m) return;
  box.textContent = '';
  const cap = document.createElement('p');
  cap.className = 'caption';
  if (m.error) {
    cap.textContent = `${m.edge}: ${m.error}`;
    box.appendChild(cap);
    return;
  }
  const row = document.createElement('div');
  row.className = 'maps';
  if (m.slices) {
    const axes = ['i', 'j', 'k'];
    const biggest = Math.max(...m.dims);
    const scale = Math.max(1, Math.floor(260 / biggest));
    for (const sl of m.slices) {
      const fig = document.createElement('figure');
      fig.style.margin = 0;
      fig.appendChild(sliceCanvas(sl, m.vmax, scale));
      const fc = document.createElement('figcaption');
      fc.className = 'caption';
      fc.textContent = `${axes[sl.axis]} = ${sl.at}`;
      fig.appendChild(fc);
      row.appendChild(fig);
    }
    cap.textContent = `${m.edge}: ${m.stat || 'map'}, voxel grid ${m.dims.join('×')}, slices through the voxel ` +
      `of largest |value| (${m.cut.join(', ')}); colour ±${fmt(m.vmax)}`;
  } else {
    const n = m.values.length;
    const w = Math.ceil(Math.sqrt(n));
    const sl = { w, h: Math.ceil(n / w), v: m.values.concat(Array(w * Math.ceil(n / w) - n).fill(null)) };
    row.appendChild(sliceCanvas(sl, m.vmax, Math.max(1, Math.floor(260 / w))));
    cap.textContent = `${m.edge}: ${m.stat || 'map'}, ${m.count} values (no voxel grid), colour ±${fmt(m.vmax)}`;
  }
  box.appendChild(row);
  box.appendChild(cap);
}

function onMap(m) {
  maps[m.edge] = m;
  if (!$('map-edge').value || $('map-edge').value === m.edge) drawMap();
}

// ---- spikes: a rolling raster of the chosen edge ----
function chooseSpikes(edge) {
  raster = { edge, offset: 0, x: [], unit: [], units: 0 };
  if (ws && ws.readyState === WebSocket.OPEN) ws.send('spikes ' + edge);
}

function onSpikes(m) {
  if (m.edge !== raster.edge) return;
  for (const s of m.msgs) {
    for (let k = 0; k < s.step.length; k++) {
      raster.x.push(raster.offset + s.step[k]);
      raster.unit.push(s.unit[k]);
    }
    raster.offset += s.steps;
    raster.units = Math.max(raster.units, s.n);
  }
  const from = raster.offset - RASTER_STEPS;
  let drop = 0;
  while (drop < raster.x.length && raster.x[drop] < from) drop++;
  raster.x.splice(0, drop);
  raster.unit.splice(0, drop);
  drawRaster();
}

function drawRaster() {
  const box = $('raster');
  let c = box.querySelector('canvas');
  if (!c) {
    box.textContent = '';
    c = document.createElement('canvas');
    box.appendChild(c);
    const cap = document.createElement('p');
    cap.className = 'caption';
    box.appendChild(cap);
  }
  c.width = width(box);
  c.height = 260;
  const g = c.getContext('2d');
  g.fillStyle = '#fff';
  g.fillRect(0, 0, c.width, c.height);
  const left = raster.offset - RASTER_STEPS;
  const sx = c.width / RASTER_STEPS;
  const sy = c.height / Math.max(1, raster.units);
  const dw = Math.max(1, Math.round(sx)); // whole pixels: crisp dots
  const dh = Math.max(1, Math.min(3, Math.floor(sy)));
  g.fillStyle = '#1f3a93';
  for (let k = 0; k < raster.x.length; k++) {
    g.fillRect(Math.floor((raster.x[k] - left) * sx), Math.floor(c.height - (raster.unit[k] + 1) * sy), dw, dh);
  }
  box.querySelector('.caption').textContent = `${raster.edge}: the last ${RASTER_STEPS} steps ` +
    `(${raster.x.length.toLocaleString('en-US')} spikes) of ${raster.units} units; time runs to the right`;
}

// ---- the connection ----
function connect() {
  ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
  ws.onopen = () => {
    if (raster.edge) ws.send('spikes ' + raster.edge);
  };
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.type === 'stats') onStats(m);
    else if (m.type === 'metrics') onMetrics(m);
    else if (m.type === 'map') onMap(m);
    else if (m.type === 'spikes') onSpikes(m);
  };
  ws.onclose = () => {
    const st = $('state');
    if (!st.classList.contains('finished')) st.textContent = 'disconnected';
    st.className = 'state closed';
    text('elapsed', 'myelin stopped serving (the run ended): reload to reconnect to a new run');
  };
}

$('spike-edge').addEventListener('change', (e) => chooseSpikes(e.target.value));
$('map-edge').addEventListener('change', drawMap);
window.addEventListener('resize', () => {
  for (const c of Object.values(live.charts)) c.setSize({ width: width(c.root.parentNode), height: 220 });
  for (const c of Object.values(metricCharts)) c.chart.setSize({ width: width(c.el), height: 220 });
});
connect();
