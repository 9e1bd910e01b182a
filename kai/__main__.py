from kai.cli import main

main()
