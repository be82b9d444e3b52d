"""The model API of a typical tutorial: FastAPI + pydantic models, the LightGBM booster loaded once at start,
and per request a one-row pandas DataFrame built from the JSON, the derived feature computed, predict called.

Run: MODEL_DIR=... uvicorn fastapi_app:app --port N   (from this folder)
"""

import json
import os
import uuid

import lightgbm as lgb
import pandas as pd
from fastapi import FastAPI
from pydantic import BaseModel

MODEL_DIR = os.environ["MODEL_DIR"]
booster = lgb.Booster(model_file=os.path.join(MODEL_DIR, "model.lgb"))
spec = json.load(open(os.path.join(MODEL_DIR, "feature_spec.json")))


class Sepal(BaseModel):
    length: float
    width: float


class Petal(BaseModel):
    length: float
    width: float


class Flower(BaseModel):
    sepal: Sepal
    petal: Petal


app = FastAPI()


@app.post("/predict")
def predict(flower: Flower):
    row = pd.DataFrame([{
        "sepal_length": flower.sepal.length,
        "sepal_width": flower.sepal.width,
        "petal_length": flower.petal.length,
        "petal_width": flower.petal.width,
    }])
    row["sepal_mul"] = row["sepal_length"] * row["sepal_width"]
    probs = booster.predict(row[spec["columns"]])[0]
    best = int(probs.argmax())
    return {
        "request_id": str(uuid.uuid4()),
        "flower": spec["classes"][best],
        "probabilities": dict(zip(spec["classes"], map(float, probs))),
    }
