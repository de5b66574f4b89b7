"""Recurrent models built only from minigrad's public ops."""
