from datetime import datetime

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, text

from todo.db import Session, engine
from todo.models import Todo

app = FastAPI(title="todo")


class TodoIn(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    done: bool = False


class TodoOut(TodoIn):
    model_config = ConfigDict(from_attributes=True)

    id: int
    created_at: datetime


@app.get("/healthz")
def healthz() -> dict:
    return {"status": "ok"}


@app.get("/readyz")
def readyz() -> dict:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise HTTPException(503, f"database unavailable: {type(exc).__name__}") from None
    return {"status": "ready"}


@app.post("/todos", status_code=201, response_model=TodoOut)
def create_todo(body: TodoIn) -> Todo:
    with Session.begin() as session:
        todo = Todo(title=body.title, done=body.done)
        session.add(todo)
        session.flush()
        session.refresh(todo)
        return todo


@app.get("/todos", response_model=list[TodoOut])
def list_todos() -> list[Todo]:
    with Session() as session:
        return list(session.scalars(select(Todo).order_by(Todo.id)))
