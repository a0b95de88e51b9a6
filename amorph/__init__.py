"""amorph: predict the first crystal polymorph to nucleate from an amorphous solid.

Implements the amorphous-to-crystalline (a2c) method of Aykol, Merchant, Batzner,
Wei & Cubuk, Nat. Comput. Sci. 5, 105-111 (2025), arXiv 2310.01117.
"""

__version__ = "0.1.0"
