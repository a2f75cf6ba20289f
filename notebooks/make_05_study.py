"""Writes notebooks/05_study.ipynb (run: python notebooks/make_05_study.py)."""

from pathlib import Path

import nbformat as nbf

cells = [
    nbf.v4.new_markdown_cell(
        "# A small study on a dask LocalCluster\n"
        "A study is a grid of independent fits (data set × model × seed). `bayesmoe.study` runs "
        "them on dask.distributed, writes every result atomically into its own folder, and "
        "resumes when rerun. Here: 4 maximum-likelihood fits (contraction in n) and 2 tiny NUTS "
        "fits, on a LocalCluster with 2 process workers. The same runs from a shell:\n\n"
        "```\nbayesmoe study examples/contraction_study.toml --out contraction --workers 2\n"
        "bayesmoe report contraction\n```"
    ),
    nbf.v4.new_code_cell(
        "import json, tempfile\n"
        "from pathlib import Path\n"
        "from dask.distributed import Client, LocalCluster\n"
        "from bayesmoe.study import parse_spec, run_study, StudyStore\n"
        "from bayesmoe.report import write_report, contraction_slopes\n"
        "\n"
        "OUT = Path(tempfile.mkdtemp(prefix='bayesmoe-study-'))"
    ),
    nbf.v4.new_markdown_cell(
        "## The specs\n"
        "Usually a TOML file (see `examples/`); `parse_spec` validates the same tables given as "
        "dicts. Every task gets its seeds from the base seed and its grid coordinates, so the "
        "same spec gives the same results on any number of workers."
    ),
    nbf.v4.new_code_cell(
        "mle_spec = parse_spec({\n"
        "    'study': {'name': 'mle-contraction', 'seed': 1},\n"
        "    'data': {'source': 'simulate', 'preset': 'S-B'},\n"
        "    'model': {'n_experts': 3},\n"
        "    'inference': {'method': 'mle', 'n_starts': 5},\n"
        "    'grid': {'n': [200, 800], 'replicate': 2},\n"
        "})\n"
        "nuts_spec = parse_spec({\n"
        "    'study': {'name': 'tiny-nuts', 'seed': 1},\n"
        "    'data': {'source': 'simulate', 'preset': 'S-B'},\n"
        "    'model': {'n_experts': 3},\n"
        "    'inference': {'method': 'nuts', 'draws': 50, 'tune': 50, 'chains': 2},\n"
        "    'grid': {'n': [100, 200]},\n"
        "})\n"
        "[(t.id, t.data_seed, t.fit_seed) for t in mle_spec.tasks()]"
    ),
    nbf.v4.new_markdown_cell("## Run on 2 local workers"),
    nbf.v4.new_code_cell(
        "cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,\n"
        "                       dashboard_address=':0')\n"
        "client = Client(cluster)\n"
        "mle = run_study(mle_spec, OUT / 'mle', client=client, progressbar=False)\n"
        "mle[['task', 'status', 'n', 'loglik', 'bic', 'voronoi_loss', 'hellinger', 'seconds']]"
    ),
    nbf.v4.new_code_cell(
        "nuts = run_study(nuts_spec, OUT / 'nuts', client=client, progressbar=False)\n"
        "nuts[['task', 'status', 'max_rhat', 'min_ess_bulk', 'divergences', 'voronoi_loss',\n"
        "      'hellinger', 'seconds']]"
    ),
    nbf.v4.new_markdown_cell(
        "## Resume\nRerunning skips the finished tasks: nothing is queued, the files are "
        "untouched. (A run stopped by Ctrl-C or a killed worker resumes the same way.)"
    ),
    nbf.v4.new_code_cell(
        "again = run_study(mle_spec, OUT / 'mle', client=client, progressbar=False)\n"
        "events = StudyStore(OUT / 'mle').read_manifest()\n"
        "print([e['event'] for e in events[-2:]],\n"
        "      'pending at the rerun:', events[-2]['n_pending'])\n"
        "assert events[-2]['n_pending'] == 0\n"
        "client.close(); cluster.close()"
    ),
    nbf.v4.new_markdown_cell(
        "## Contraction and reports\nThe slope of log(distance) on log(n) (theory: −1/2; two "
        "sample sizes only here, so it is rough). `write_report` writes a self-contained HTML page "
        "per study and per fit."
    ),
    nbf.v4.new_code_cell(
        "print(contraction_slopes(mle, 'hellinger'))\n"
        "for name in ('mle', 'nuts'):\n"
        "    page = write_report(OUT / name)\n"
        "    print(page, page.stat().st_size, 'bytes')\n"
        "sorted(p.relative_to(OUT).as_posix() for p in OUT.rglob('report.html'))"
    ),
]

nb = nbf.v4.new_notebook()
nb["cells"] = cells
nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
out = Path(__file__).with_name("05_study.ipynb")
nbf.write(nb, out)
print(f"wrote {out}")
