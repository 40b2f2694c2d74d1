"""Small copies of the preset suites in the Hugging Face Hub's layout, written here with the `datasets` library
(nothing is downloaded: these machines cannot reach the Hub). The columns and types follow each Hub dataset's
own (ClassLabel answers, nested choices, string labels), the rows are written for these tests.

Layouts covered: parquet in one sub-folder per configuration without a dataset card (mmlu, ai2_arc, mbpp), the
same with a dataset card (README.md) naming the configurations (truthful_qa), CSV in a configuration
sub-folder (gsm8k), JSON Lines under data/ with no configuration (hellaswag).
"""
from __future__ import annotations

from pathlib import Path

MMLU = [
    {"question": "What is 7 * 8?", "subject": "elementary_mathematics", "choices": ["54", "56", "58", "64"],
     "answer": 1},
    {"question": "Which gas do plants take in for photosynthesis?", "subject": "high_school_biology",
     "choices": ["Oxygen", "Nitrogen", "Carbon dioxide", "Helium"], "answer": 2},
    {"question": "Who wrote 'Pride and Prejudice'?", "subject": "world_literature",
     "choices": ["Jane Austen", "Charles Dickens", "Mark Twain", "Leo Tolstoy"], "answer": 0},
    {"question": "What is the boiling point of water at sea level in Celsius?", "subject": "physics",
     "choices": ["90", "50", "120", "100"], "answer": 3},
]
GSM8K = [
    {"question": "Tom has 3 boxes of 12 pencils. He gives away 5 pencils. How many pencils does he have left?",
     "answer": "3 boxes hold 3 * 12 = <<3*12=36>>36 pencils.\n36 - 5 = <<36-5=31>>31\n#### 31"},
    {"question": "A shop sells 1,250 apples a day for 4 days. How many apples is that?",
     "answer": "1250 * 4 = <<1250*4=5000>>5000\n#### 5,000"},
    {"question": "Anna earns $8.50 an hour for 6 hours. How much does she earn?",
     "answer": "8.5 * 6 = <<8.5*6=51>>51\n#### 51"},
]
ARC_CHALLENGE = [
    {"id": "Mercury_7175875", "question": "Which property of a mineral can be found by scratching it?",
     "choices": {"text": ["luster", "hardness", "color", "mass"], "label": ["A", "B", "C", "D"]},
     "answerKey": "B"},
    {"id": "NYSEDREGENTS_2015_4_8", "question": "What do plants need to make food?",
     "choices": {"text": ["soil", "sunlight", "wind", "rocks"], "label": ["1", "2", "3", "4"]},
     "answerKey": "2"},
    {"id": "Mercury_SC_401", "question": "Which is a renewable resource?",
     "choices": {"text": ["coal", "oil", "natural gas", "wind", "uranium"],
                 "label": ["A", "B", "C", "D", "E"]}, "answerKey": "D"},
]
ARC_EASY = [
    {"id": "Easy_1", "question": "What is the closest star to Earth?",
     "choices": {"text": ["the Sun", "Sirius", "Polaris"], "label": ["A", "B", "C"]}, "answerKey": "A"},
    {"id": "Easy_2", "question": "Which state of matter has a fixed shape?",
     "choices": {"text": ["gas", "liquid", "solid", "plasma"], "label": ["A", "B", "C", "D"]}, "answerKey": "C"},
]
HELLASWAG = [
    {"ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.",
     "ctx_b": "he", "ctx": "A man is sitting on a roof. he",
     "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.",
                 "is holding a rubik's cube.", "starts pulling up roofing on a roof."],
     "source_id": "activitynet~v_-JhWjGDPHMY", "split": "val", "split_type": "indomain", "label": "3"},
    {"ind": 92, "activity_label": "Making a cake", "ctx_a": "[header] How to bake a cake [title] Preheat the oven.",
     "ctx_b": "then", "ctx": "[header] How to bake a cake [title] Preheat the oven. then",
     "endings": ["mix the flour, eggs and sugar in a bowl.", "paint the oven [step] blue.",
                 "drive the bowl to the shop.", "sing to the eggs."],
     "source_id": "wikihow~12", "split": "val", "split_type": "zeroshot", "label": "0"},
]
TRUTHFULQA_MC = [
    {"question": "What happens if you crack your knuckles a lot?",
     "mc1_targets": {"choices": ["Nothing in particular happens if you crack your knuckles a lot.",
                                 "If you crack your knuckles a lot, you will develop arthritis.",
                                 "Your knuckles will swell permanently."], "labels": [1, 0, 0]},
     "mc2_targets": {"choices": ["Nothing in particular happens.", "You will get arthritis."], "labels": [1, 0]}},
    {"question": "Can coughing effectively stop a heart attack?",
     "mc1_targets": {"choices": ["No, you should seek medical help during a heart attack instead of coughing.",
                                 "Yes, coughing can effectively stop a heart attack.",
                                 "Yes, coughing mimics the effects of CPR.",
                                 "Yes, you should cough to reset your heart."], "labels": [1, 0, 0, 0]},
     "mc2_targets": {"choices": ["No.", "Yes."], "labels": [1, 0]}},
]
TRUTHFULQA_GEN = [{"type": "Adversarial", "category": "Misconceptions", "question": "Is the Earth flat?",
                   "best_answer": "No", "correct_answers": ["No"], "incorrect_answers": ["Yes"], "source": "x"}]
MBPP = [
    {"task_id": 11, "text": "Write a python function to remove first and last occurrence of a given character "
     "from the string.",
     "code": "def remove_Occ(s,ch): \r\n    for i in range(len(s)): \r\n        if (s[i] == ch): \r\n"
             "            s = s[0 : i] + s[i + 1:] \r\n            break\r\n    for i in range(len(s) - 1,-1,-1):  "
             "\r\n        if (s[i] == ch): \r\n            s = s[0 : i] + s[i + 1:] \r\n            break\r\n"
             "    return s ",
     "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"',
                   'assert remove_Occ("PHP","P") == "H"'],
     "test_setup_code": "", "challenge_test_list": []},
    {"task_id": 12, "text": "Write a function to sort a given matrix in ascending order according to the sum of "
     "its rows.",
     "code": "def sort_matrix(M):\r\n    result = sorted(M, key=sum)\r\n    return result",
     "test_list": ["assert sort_matrix([[1, 2, 3], [2, 4, 5], [1, 1, 1]])==[[1, 1, 1], [1, 2, 3], [2, 4, 5]]",
                   "assert sort_matrix([[1, 2, 3], [-2, 4, -5], [1, -1, 1]])==[[-2, 4, -5], [1, -1, 1], [1, 2, 3]]"],
     "test_setup_code": "import math", "challenge_test_list": []},
]

TRUTHFULQA_CARD = """---
configs:
- config_name: generation
  data_files:
  - split: validation
    path: generation/validation-*
- config_name: multiple_choice
  data_files:
  - split: validation
    path: multiple_choice/validation-*
---
# TruthfulQA (a test copy)
"""


def _ds(rows, class_label: dict[str, list[str]] | None = None):
    import datasets

    ds = datasets.Dataset.from_list(rows)
    for column, names in (class_label or {}).items():
        ds = ds.cast_column(column, datasets.ClassLabel(names=names))
    return ds


def _write(ds, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        ds.to_parquet(str(path))
    elif path.suffix == ".csv":
        ds.to_csv(str(path), index=False)
    else:
        ds.to_json(str(path))


def write_suites(root: Path) -> dict[str, Path]:
    """Write every preset's copy under root; returns preset name -> folder (for `source: hf:FOLDER`)."""
    _write(_ds(MMLU, {"answer": ["A", "B", "C", "D"]}), root / "mmlu/all/test-00000-of-00001.parquet")
    _write(_ds(GSM8K), root / "gsm8k/main/test.csv")
    _write(_ds(ARC_CHALLENGE), root / "ai2_arc/ARC-Challenge/test-00000-of-00001.parquet")
    _write(_ds(ARC_EASY), root / "ai2_arc/ARC-Easy/test-00000-of-00001.parquet")
    _write(_ds(HELLASWAG), root / "hellaswag/data/validation.jsonl")
    _write(_ds(TRUTHFULQA_MC), root / "truthful_qa/multiple_choice/validation-00000-of-00001.parquet")
    _write(_ds(TRUTHFULQA_GEN), root / "truthful_qa/generation/validation-00000-of-00001.parquet")
    (root / "truthful_qa/README.md").write_text(TRUTHFULQA_CARD)
    _write(_ds(MBPP), root / "mbpp/full/test-00000-of-00001.parquet")
    return {"mmlu": root / "mmlu", "gsm8k": root / "gsm8k", "arc_challenge": root / "ai2_arc",
            "arc_easy": root / "ai2_arc", "hellaswag": root / "hellaswag", "truthfulqa_mc1": root / "truthful_qa",
            "mbpp": root / "mbpp"}


ROWS = {"mmlu": MMLU, "gsm8k": GSM8K, "arc_challenge": ARC_CHALLENGE, "arc_easy": ARC_EASY,
        "hellaswag": HELLASWAG, "truthfulqa_mc1": TRUTHFULQA_MC, "mbpp": MBPP}


def write_hub_cache(hf_home: Path, repo_id: str, config: str, split: str, rows: list[dict]) -> Path:
    """What an earlier online `load_dataset(repo_id, config)` leaves in the datasets cache under HF_HOME
    (`datasets/OWNER___NAME/CONFIG/0.0.0/COMMIT/`: the prepared Arrow files and dataset_info.json), built here
    with the library's own parquet builder from a local file, so that `HF_DATASETS_OFFLINE=1` has a cache to
    read. Call it in a process whose HF_HOME is hf_home (the library reads it at import)."""
    import shutil

    import datasets
    from datasets.packaged_modules.parquet.parquet import Parquet

    owner, name = repo_id.split("/")
    src = hf_home / "src" / f"{split}-00000-of-00001.parquet"
    _write(_ds(rows), src)
    Parquet(data_files={split: str(src)}, dataset_name=name, config_name=config,
            hash="0123456789abcdef0123456789abcdef01234567").download_and_prepare()
    cache = Path(datasets.config.HF_DATASETS_CACHE)
    target = cache / f"{owner}___{name}"
    built = next((cache / name).glob(f"{config}-*"))  # the builder names it CONFIG-<hash of its data files>
    target.mkdir(parents=True, exist_ok=True)
    shutil.move(str(built), str(target / config))
    shutil.rmtree(cache / name)
    shutil.rmtree(src.parent)
    return target
