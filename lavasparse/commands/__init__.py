"""One module per verb of the ``lavasparse`` command, each with ``run(args)
-> exit status``, importing at its top only the stages that verb uses: the
command line imports the chosen verb's module alone (lavasparse/cli.py), so
that ``check`` and ``deploy`` never load torch."""
