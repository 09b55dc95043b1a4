/* The compliance report's filters and detail view: html_render inlines this into the page. It reads
   the results from the page's own JSON (#results-data) and sets body[data-ready] when interactive. */
(function () {
  var data = JSON.parse(document.getElementById('results-data').textContent);
  var rows = Array.prototype.slice.call(document.querySelectorAll('#results tbody tr'));
  var keys = rows.map(function (row, i) { var r = data[i];
    return [r.control, r.title, r.target, r.message, r.outcome, r.severity, (r.categories || []).join(' ')].join(' ').toLowerCase(); });
  var f = { outcome: document.getElementById('f-outcome'), severity: document.getElementById('f-severity'),
            category: document.getElementById('f-category'), target: document.getElementById('f-target'),
            text: document.getElementById('f-text') };
  var count = document.getElementById('f-count');
  function apply() {
    var o = f.outcome.value, s = f.severity.value, c = f.category.value, t = f.target.value,
        q = f.text.value.trim().toLowerCase(), shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var r = data[i];
      var ok = (!o || r.outcome === o) && (!s || r.severity === s) && (!t || r.target === t) &&
               (!c || (r.categories || []).indexOf(c) >= 0) && (!q || keys[i].indexOf(q) >= 0);
      rows[i].hidden = !ok; if (ok) shown++;
    }
    count.textContent = 'showing ' + shown + ' of ' + rows.length;
  }
  var timer = null;
  ['outcome', 'severity', 'category', 'target'].forEach(function (k) { f[k].addEventListener('change', apply); });
  f.text.addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(apply, 120); });
  // Evidence as the cards show it: null is "missing", booleans yes/no, nesting by indentation.
  function readable(v, pad, skip) {
    if (v === null || v === undefined) return ' missing';
    if (typeof v === 'boolean') return v ? ' yes' : ' no';
    if (typeof v !== 'object') return ' ' + String(v);
    var keys = Array.isArray(v) ? v.map(function (x, i) { return i; }) : Object.keys(v).filter(function (k) { return !(skip && k in skip); });
    if (!keys.length) return ' none';
    return keys.map(function (k) {
      return '\n' + pad + (Array.isArray(v) ? '-' : k + ':') + readable(v[k], pad + '  ');
    }).join('');
  }
  function measured(margins) {
    var names = Object.keys(margins);
    return names.length ? 'measured:' + names.map(function (n) { var m = margins[n], u = m.unit ? ' ' + m.unit : '';
      return '\n  ' + n + ': ' + m.observed + u + ', threshold ' + (m.better === 'lower' ? '<= ' : '>= ') + m.limit + u +
             ', margin ' + m.margin + u; }).join('') + '\n\n' : '';
  }
  var detail = document.getElementById('detail');
  document.querySelector('#results tbody').addEventListener('click', function (e) {
    var row = e.target.closest('tr'); if (!row) return;
    var r = data[Number(row.dataset.i)];
    detail.textContent = r.control + ' [' + r.target + '] ' + r.outcome + '\n' + r.title + '\n\n' +
      (r.message ? r.message + '\n\n' : '') + measured(r.margins || {}) + 'evidence:' + readable(r.evidence, '  ', r.margins || {}) +
      (r.remediation ? '\n\nremediation: ' + r.remediation : '');
    detail.style.display = 'block';
  });
  apply();
  document.body.dataset.ready = 'true';
})();
