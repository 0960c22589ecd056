"""The OpenAI client and the one place its errors become ours."""
