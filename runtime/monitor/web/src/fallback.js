// The monitor page of a build without its plots (node/npm or the bundler
// were unavailable at build time; runtime/monitor/page.cmake): the stage
// table, refreshed from /api/stats once a second. No npm package here.
(function () {
  var $ = function (id) { return document.getElementById(id); };
  ['live', 'metrics-sec', 'map-sec', 'spikes-sec'].forEach(function (id) { $(id).hidden = true; });
  function show(m) {
    $('name').textContent = m.pipeline;
    $('file').textContent = m.file;
    $('state').textContent = m.state + (m.state === 'finished' ? ' (exit ' + m.exit_code + ')' : '');
    $('state').className = 'state ' + m.state;
    $('elapsed').textContent = Number(m.elapsed).toPrecision(4) + ' s';
    var body = $('stages').tBodies[0];
    body.textContent = '';
    m.stages.forEach(function (s) {
      var rate = s.inputs ? s.rate_in : s.rate_out;
      var row = body.insertRow();
      [s.id, s.plugin, s.inputs ? s.msgs_in : '-', s.msgs_out, rate == null ? '-' : Number(rate).toPrecision(3),
        s.inputs ? s.queue + '/' + s.queue_capacity : '-', s.busy == null ? '-' : (100 * s.busy).toFixed(1) + '%']
        .forEach(function (v) { row.insertCell().textContent = v; });
    });
  }
  function poll() {
    fetch('/api/stats').then(function (r) { return r.json(); }).then(function (m) {
      show(m);
      if (m.state !== 'finished') setTimeout(poll, 1000);
    }).catch(function () {
      $('state').textContent = 'disconnected';
      $('state').className = 'state closed';
    });
  }
  poll();
})();
