"""Local motifs: orthorhombic subcells cut out of the amorphous cell."""
