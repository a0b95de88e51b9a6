"""Potentials and the engines that move atoms with them (MD and relaxation)."""
