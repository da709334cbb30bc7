"""The local engine: one process reads, scores and writes the catalog chunk by chunk, so memory
follows `--chunk-size`, not the catalog size."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from batch import readers, writers
from batch.config import BatchConfig
from batch.model import ScoringModel
from batch.scoring import (
    check_columns,
    count_not_numbers,
    output_schema,
    score_chunk,
    warn_missing_inputs,
    with_model_names,
)
from batch.summary import Summary, warn_not_numbers
from training.interrupts import raise_if_interrupted


def run_local(config: BatchConfig, model: ScoringModel) -> Summary:
    """Score `config.data` into `config.output`; nothing is left under the output on failure."""
    source, final = Path(config.data), Path(config.output)
    kind = readers.catalog_format(source, config.format)
    writers.check_output(final, config.overwrite)
    summary = Summary("local", model.ref.uri, model.ref.name, model.ref.version, str(final))
    counts = readers.ReadCounts()
    seen: set[str] = set()  # JSON keys vary by row: a column may first appear in a later chunk
    started = time.perf_counter()
    chunks = readers.read_chunks(source, kind, config.chunk_size, counts, config.csv_separator)
    total = readers.count_rows(source, kind)
    with (
        writers.atomic_path(final, config.overwrite) as temporary,
        tqdm(total=total, unit="rows", disable=not config.progress, smoothing=0.1) as bar,
    ):
        schema = output_schema(model.task, by_row=model.inputs.id_column is None)
        writer = writers.open_writer(config.output_format, temporary, schema)
        try:
            for chunk in chunks:
                raise_if_interrupted()
                chunk = with_model_names(chunk, model.inputs)
                if summary.rows == 0:
                    check_columns(list(chunk.columns), model.inputs, source)
                seen.update(chunk.columns)
                scored = score_chunk(model, chunk, config.top_k, summary.rows, source)
                summary.not_numbers.update(count_not_numbers(chunk, model.inputs))
                writer.write(scored)
                _count(summary, scored, started)
                bar.update(len(scored))
            raise_if_interrupted()  # before the output is renamed into place
        finally:
            writer.close()
    summary.malformed_lines = counts.malformed_lines
    summary.seconds = time.perf_counter() - started
    warn_missing_inputs(seen, model.inputs, config.data)
    warn_not_numbers(summary, config.data)
    return summary


def _count(summary: Summary, scored: pd.DataFrame, started: float) -> None:
    if summary.first_output_seconds is None:
        summary.first_output_seconds = round(time.perf_counter() - started, 3)
    summary.rows += len(scored)
    summary.no_text += int(scored["reason"].notna().sum())
    summary.labels.update(scored.loc[scored["reason"].isna(), "label"])
