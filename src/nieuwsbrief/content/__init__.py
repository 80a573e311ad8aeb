"""The newsletter's files read into the model: issue, articles, agenda, photos."""
