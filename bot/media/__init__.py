"""Images, transcription and the audio checks under them."""
