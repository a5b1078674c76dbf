"""The report page's stylesheet and script, as strings the page inlines (nothing is fetched when viewed).

``SCRIPT`` fills the trajectory browser from the page's JSON block and marks
``<html data-report-status="ok">`` when it ran to its end; ``ERRORS_SCRIPT`` runs first and counts script
errors in ``data-script-errors``, so a headless browser can tell a page that rendered from a broken one.
"""

from __future__ import annotations

__all__ = ["CSS", "ERRORS_SCRIPT", "SCRIPT"]

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0 auto;max-width:1280px;padding:12px 20px;color:#222}
h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}h3{font-size:15px}
table{border-collapse:collapse;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 7px;text-align:right;font-size:13px;white-space:nowrap}
td.name,th:first-child{text-align:left}thead th{background:#f4f4f4;position:sticky;top:0}
.note{color:#666;font-size:12px}.chart{margin:6px 10px 6px 0;background:#fff}.ctitle{font-size:12px;font-weight:600}
.tick{font-size:10px;fill:#555}.axis{font-size:11px;fill:#333}.legend{font-size:10px}.row{display:flex;flex-wrap:wrap;align-items:flex-start;gap:8px}
.diag td:first-child{text-align:left}#filters{display:flex;flex-wrap:wrap;gap:10px;align-items:center;background:#f7f7f7;padding:8px;border-radius:6px}
#filters label{font-size:13px}#traj-list{margin-top:8px}.traj{border:1px solid #ddd;border-radius:6px;margin:6px 0;padding:6px 10px}
.traj summary{cursor:pointer}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.msg{margin:4px 0;padding:4px 8px;border-radius:4px;white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:12px}
.user{background:#eef3fb}.assistant{background:#f3f8ee}.feedback{background:#fdf6e7}.meta{color:#555;font-size:12px}
img.fig{max-width:100%;border:1px solid #eee}
"""

SCRIPT = r"""
(function(){
  const data = JSON.parse(document.getElementById('trajectory-data').textContent);
  const $ = id => document.getElementById(id);
  const sources = [...new Set(data.map(r => r.src))];
  const srcSel = $('f-source');
  for (const s of sources) { const o = document.createElement('option'); o.value = s; o.textContent = s; srcSel.appendChild(o); }
  const esc = s => String(s == null ? '' : s).replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
  const num = v => (v == null || Number.isNaN(v)) ? '—' : (Math.abs(v) >= 100 ? v.toFixed(0) : v.toPrecision(3));
  function matches(r) {
    const src = srcSel.value, task = $('f-task').value.trim().toLowerCase(), outcome = $('f-outcome').value;
    const wmin = parseFloat($('f-wmin').value), wmax = parseFloat($('f-wmax').value);
    if (src && r.src !== src) return false;
    if (task && !(r.task.toLowerCase().includes(task) || r.prompt.toLowerCase().includes(task))) return false;
    if (outcome === 'solved' && r.t_star == null) return false;
    if (outcome === 'unsolved' && r.t_star != null) return false;
    if (outcome === 'first' && r.t_star !== 1) return false;
    if (outcome === 'later' && !(r.t_star > 1)) return false;
    if (!Number.isNaN(wmin) && !(r.weight != null && r.weight >= wmin)) return false;
    if (!Number.isNaN(wmax) && !(r.weight != null && r.weight <= wmax)) return false;
    return true;
  }
  function render(r) {
    const head = `<span class="${r.t_star != null ? 'ok' : 'bad'}">${r.t_star != null ? 'solved at turn ' + r.t_star : 'unsolved'}</span>`
      + ` · task <b>${esc(r.task)}</b> · sample ${esc(r.traj)} · weight ${num(r.weight)} · return ${num(r.ret)}`
      + ` · ${esc(r.src)}`;
    let body = `<div class="msg user">${esc(r.prompt)}</div>`;
    r.turns.forEach((t, i) => {
      body += `<div class="meta">turn ${i + 1}: reward ${num(t.reward)} · verifier ${esc(t.verifier)} · answer ${esc(t.answer)}`
        + (t.format_error ? ' · format error' : '') + (t.undecided ? ' · undecided (no verdict in time)' : '')
        + (t.turn_weight != null ? ` · turn weight ${num(t.turn_weight)}` : '') + (t.kind ? ` · feedback: ${esc(t.kind)}` : '') + `</div>`;
      body += `<div class="msg assistant">${esc(t.reply)}</div>`;
      if (t.feedback) body += `<div class="msg feedback">${esc(t.feedback)}</div>`;
    });
    return `<details class="traj"><summary>${head}</summary>${body}</details>`;
  }
  function update() {
    const shown = data.filter(matches);
    const limit = parseInt($('f-limit').value, 10) || 50;
    $('traj-count').textContent = `${shown.length} of ${data.length} trajectories match` + (shown.length > limit ? ` (first ${limit} shown)` : '');
    $('traj-list').innerHTML = shown.slice(0, limit).map(render).join('');
  }
  const ids = {source: 'f-source', task: 'f-task', outcome: 'f-outcome', wmin: 'f-wmin', wmax: 'f-wmax', limit: 'f-limit'};
  // a link can preset the filters: report.html#outcome=solved&wmin=1
  for (const [key, value] of new URLSearchParams(location.hash.slice(1))) if (ids[key]) $(ids[key]).value = value;
  for (const id of Object.values(ids)) $(id).addEventListener('input', update);
  update();
  document.documentElement.setAttribute('data-report-status', 'ok');
  document.documentElement.setAttribute('data-script-errors', String(window.__reportErrors.length));
})();
"""

ERRORS_SCRIPT = (
    "window.__reportErrors=[];window.addEventListener('error',function(e){window.__reportErrors.push(String("
    "e.message));document.documentElement.setAttribute('data-script-errors',String(window.__reportErrors.length));});"
)
