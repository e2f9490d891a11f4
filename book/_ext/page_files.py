"""Sphinx extension of this book: the data files a page offers (`bumpdiff_core.present.export.download_links`,
carried inside the executed notebook's outputs) are written into the built site beside the page, so
the executed notebook is the page's only input and plain links pass the strict build."""
from pathlib import Path

from bumpdiff_core.runs.atomic import atomic_write_bytes
from bumpdiff_core.present.export import page_files_of


def _write_page_files(app, pagename, templatename, context, doctree):
    """Sphinx `html-page-context`: the files a notebook page offers, written beside its HTML."""
    import json

    if doctree is None or app.builder.format != "html" or pagename not in app.env.found_docs:
        return
    source = Path(app.env.doc2path(pagename))
    if source.suffix != ".ipynb":
        return
    page_dir = Path(app.outdir) / Path(pagename).parent
    for folder, files in page_files_of(json.loads(source.read_text(encoding="utf-8"))):
        for name, data in files.items():
            atomic_write_bytes(page_dir / folder / name, data)


def setup(app):
    """Register the hook (book/_config.yml `local_extensions`)."""
    app.connect("html-page-context", _write_page_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


